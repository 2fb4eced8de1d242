"""bus.metrics: counters per flow and state, never per SIREN, served in the Prometheus format."""

from __future__ import annotations

import httpx
from prometheus_client import REGISTRY, generate_latest

from bus import metrics
from bus.store.models import OutboxEvent


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_transitions_and_stage_durations() -> None:
    before = value("dematbus_documents_total", flow="actes", state="transmitted")
    count_before = value("dematbus_stage_duration_seconds_count", flow="actes", stage="tdt")
    sum_before = value("dematbus_stage_duration_seconds_sum", flow="actes", stage="tdt")
    metrics.observe_transition("actes", "tdt", "transmitted", 2.5)
    metrics.observe_transition("actes", "tdt", "transmitted", 0.5)
    metrics.observe_transition("actes", None, "deposited", None)  # no duration: counter only
    assert value("dematbus_documents_total", flow="actes", state="transmitted") == before + 2
    assert value("dematbus_stage_duration_seconds_count", flow="actes", stage="tdt") == count_before + 2
    assert value("dematbus_stage_duration_seconds_sum", flow="actes", stage="tdt") == sum_before + 3.0
    le = value("dematbus_stage_duration_seconds_bucket", flow="actes", stage="tdt", le="1.0")
    assert le >= 1


def test_deposits_and_label_hygiene() -> None:
    ok = value("dematbus_deposits_total", flow="helios", outcome="accepted")
    ko = value("dematbus_deposits_total", flow="helios", outcome="refused")
    unknown = value("dematbus_deposits_total", flow="unknown", outcome="refused")
    deposited = value("dematbus_documents_total", flow="helios", state="deposited")
    metrics.observe_deposit("helios", True)
    metrics.observe_deposit("helios", False)
    metrics.observe_deposit("'; DROP TABLE--", False)  # a caller's made-up flow never becomes a label
    assert value("dematbus_deposits_total", flow="helios", outcome="accepted") == ok + 1
    assert value("dematbus_deposits_total", flow="helios", outcome="refused") == ko + 1
    assert value("dematbus_deposits_total", flow="unknown", outcome="refused") == unknown + 1
    assert value("dematbus_documents_total", flow="helios", state="deposited") == deposited + 1  # accepted only
    metrics.observe_transition("actes", "tdt", "bogus", 1)
    assert value("dematbus_documents_total", flow="actes", state="other") >= 1
    text = generate_latest(REGISTRY).decode()
    assert "DROP" not in text and "siren" not in text.lower()
    for family in ("dematbus_documents_total", "dematbus_stage_duration_seconds_bucket",
                   "dematbus_deposits_total", "dematbus_outbox_pending"):
        assert family in text


async def test_outbox_gauge_and_asgi_app(store) -> None:  # type: ignore[no-untyped-def]
    async with store.transaction() as session:
        session.add_all([OutboxEvent(topic="dematbus.events", key="x", payload={}) for _ in range(3)])
    assert await metrics.refresh_outbox_pending(store) == 3
    assert value("dematbus_outbox_pending") == 3
    metrics.set_outbox_pending(0)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=metrics.metrics_app()), base_url="http://t") as c:
        resp = await c.get("/")
    assert resp.status_code == 200 and "dematbus_outbox_pending 0.0" in resp.text


async def test_record_move_measures_the_stage_from_the_journal(store, keys) -> None:  # type: ignore[no-untyped-def]
    import uuid
    from datetime import timedelta
    from unittest.mock import patch

    from bus.store import journal
    from bus.store.models import Document, utcnow
    from tests.conftest import SIREN_A

    doc_id = str(uuid.uuid4())
    started = utcnow() - timedelta(seconds=90)
    count = value("dematbus_stage_duration_seconds_count", flow="actes", stage="sae")
    total = value("dematbus_stage_duration_seconds_sum", flow="actes", stage="sae")
    archived = value("dematbus_documents_total", flow="actes", state="archived")
    async with store.transaction() as session:
        doc = Document(id=doc_id, flow="actes", siren=SIREN_A, state="archiving", stage="sae", meta={})
        session.add(doc)
        await session.flush()
        with patch.object(journal, "utcnow", lambda: started):
            await journal.append(session, doc_id, "stage.started", "archiving", {"stage": "sae"})
        await journal.append(session, doc_id, "stage.submitted", "archiving", {"stage": "sae"})
        await metrics.record_move(session, doc, "archiving", "stage.submitted")  # not the end: no duration
        assert value("dematbus_stage_duration_seconds_count", flow="actes", stage="sae") == count
        doc.state = "archived"
        await journal.append(session, doc_id, "stage.done", "archived", {"stage": "sae"})
        await metrics.record_move(session, doc, "archived", "stage.done")
    assert value("dematbus_stage_duration_seconds_count", flow="actes", stage="sae") == count + 1
    assert 89 < value("dematbus_stage_duration_seconds_sum", flow="actes", stage="sae") - total < 120
    assert value("dematbus_documents_total", flow="actes", state="archived") == archived + 1


async def test_metrics_endpoint_answers_on_metrics_itself() -> None:
    from fastapi import FastAPI

    app = FastAPI()
    app.add_route("/metrics", metrics.metrics_endpoint, include_in_schema=False)
    metrics.observe_deposit("actes", True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        resp = await c.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    assert 'dematbus_deposits_total{flow="actes",outcome="accepted"}' in resp.text
