"""Mégalis's read-only smoke sequence, in process (the same sequence runs against the real API
process in test_pastell_clients.py)."""

from __future__ import annotations

import httpx

from tests.conftest import SIREN_A
from tests.pastell.conftest import basic, deposit_acte
from tests.pastell.smoke import NAMES, check, smoke_sequence


async def test_every_call_of_the_smoke_sequence_answers_2xx_json(http: httpx.AsyncClient, keys) -> None:  # type: ignore[no-untyped-def]
    await deposit_acte(http, keys["a"], SIREN_A, "SMOKE_1")  # deposited natively, seen through Pastell
    steps, sequence = [], smoke_sequence(SIREN_A)
    step = next(sequence)
    while True:
        name, path = step
        resp = await http.get(path, headers=basic(keys["a"]))
        check(name, resp.status_code, resp.headers.get("content-type", ""), resp.content)
        steps.append(name)
        try:
            step = sequence.send(resp.json())
        except StopIteration:
            break
    assert steps == NAMES
