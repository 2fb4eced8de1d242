"""Webhook deliveries against a real local HTTP receiver: signed, deduplicated, retried with
backoff, then `failed` after the last attempt; registration refuses bad input."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid

import pytest
from sqlalchemy import select

from bus import webhooks
from bus.store.models import WebhookDelivery
from tests.conftest import SIREN_A, SIREN_B
from tests.webhook_receiver import Receiver

SECRET = "sixteen-chars-or-more"


def a_move(siren: str = SIREN_A, state: str = "deposited") -> dict:  # type: ignore[type-arg]
    doc = str(uuid.uuid4())
    return {"event_id": f"{doc}:1", "document_id": doc, "siren": siren, "flow": "actes", "state": state,
            "event": "deposited", "seq": 1, "at": "2024-05-02T08:00:00.000000", "volumes": {}}


async def deliveries(store, hook_id: int) -> list[WebhookDelivery]:  # type: ignore[no-untyped-def]
    async with store.sessions() as session:
        return list((await session.execute(select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook_id)))
                    .scalars())


async def test_signed_retried_then_delivered_or_failed(store, keys) -> None:  # type: ignore[no-untyped-def]
    flaky, dead = Receiver(failures=2), Receiver(failures=1_000)
    try:
        async with store.transaction() as session:
            good, _ = await webhooks.register(session, SIREN_A, flaky.url, SECRET, "test")
            bad, _ = await webhooks.register(session, SIREN_B, dead.url, SECRET, "test")
        move = a_move()
        assert await webhooks.enqueue(store, move) == 1
        assert await webhooks.enqueue(store, move) == 0  # a redelivered move adds nothing
        assert await webhooks.enqueue(store, a_move(SIREN_B)) == 1

        dispatcher = webhooks.Dispatcher(store, webhooks.DeliverySettings(backoff=0.05, max_attempts=4, timeout=5))
        try:
            for _ in range(40):
                await dispatcher.run_due()
                await asyncio.sleep(0.06)
        finally:
            await dispatcher.aclose()

        [ok] = await deliveries(store, good.id)
        assert ok.status == "delivered" and ok.attempts == 3 and len(flaky.calls) == 3
        for headers, body in flaky.calls:
            assert headers["x-dematbus-event-id"] == move["event_id"]
            assert headers["x-dematbus-signature"] == "sha256=" + hmac.new(SECRET.encode(), body,
                                                                            hashlib.sha256).hexdigest()
        [ko] = await deliveries(store, bad.id)
        assert ko.status == "failed" and ko.attempts == 4 and ko.last_error == "HTTP 503" and len(dead.calls) == 4
    finally:
        flaky.close()
        dead.close()


@pytest.mark.parametrize(("url", "secret", "code"), [
    ("ftp://example.fr/hook", None, "invalid_webhook_url"),
    ("https://example.fr/hook", "short", "invalid_webhook_secret"),
])
async def test_registration_refuses_bad_input(store, keys, url, secret, code) -> None:  # type: ignore[no-untyped-def]
    async with store.transaction() as session:
        with pytest.raises(webhooks.WebhookError) as refused:
            await webhooks.register(session, SIREN_A, url, secret, "test")
    assert refused.value.code == code and refused.value.status == 422


async def test_a_batch_of_moves_queues_each_once_even_with_a_redelivered_one(store, keys) -> None:  # type: ignore[no-untyped-def]
    async with store.transaction() as session:
        hook_a, _ = await webhooks.register(session, SIREN_A, "http://127.0.0.1:9/a", SECRET, "test")
        hook_b, _ = await webhooks.register(session, SIREN_B, "http://127.0.0.1:9/b", SECRET, "test")
    seen = a_move()
    assert await webhooks.enqueue(store, seen) == 1
    fresh = [a_move(), a_move(SIREN_B), a_move(SIREN_B, "transmitted")]
    assert await webhooks.enqueue(store, seen, *fresh) == 3  # the redelivered one is skipped
    assert sorted(d.event_id for d in await deliveries(store, hook_a.id)) == sorted([seen["event_id"],
                                                                                   fresh[0]["event_id"]])
    assert len(await deliveries(store, hook_b.id)) == 2
    assert await webhooks.enqueue(store) == 0
