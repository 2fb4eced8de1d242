"""Done means of issue 16: a broker SIGKILLed under `dematbus up --demo` is healed without anyone
stepping in; actes deposited before and after the kill reach `archived`, each transmitted and
archived once.

The stage timeout is set far beyond the test, so the reconciler's periodic pass plays no part:
the supervisor restarts the broker (and the workers, on the new broker), and the workers redrive
every open document from the store when they see the broker has forgotten the stream."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import date
from pathlib import Path

import httpx

from connectors.signature.pdf import make_pdf
from tests.integration.conftest import FAST
from tests.reliability.uprun import running_up

NO_RECONCILER = {"DEMATBUS_STAGE_TIMEOUT": "900", "DEMATBUS_RECONCILE_INTERVAL": "900"}


def deposit(api: str, key: str, siren: str, numero: str) -> str:
    meta = {"nature": 1, "numero_interne": numero, "date_decision": date.today().isoformat(),
            "objet": f"Délibération {numero}", "classification": "1.1"}
    resp = httpx.post(f"{api}/api/v1/documents", headers={"Authorization": f"Bearer {key}"}, timeout=30,
                      data={"flow": "actes", "siren": siren, "metadata": json.dumps(meta)},
                      files={"document": ("deliberation.pdf", make_pdf(numero), "application/pdf")})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def test_a_broker_killed_under_up_demo_heals_and_every_acte_is_archived_once(tmp_path: Path) -> None:
    with running_up(tmp_path, {**FAST, **NO_RECONCILER}) as up:
        api, demos = up.endpoints["api"], up.endpoints["demo"]
        plain = next(d for d in demos if d["signature"] is None)
        mine = [deposit(api, plain["api_key"], plain["siren"], f"AVANT_{i}") for i in range(2)]
        broker = up.child("tansu")
        os.kill(broker, signal.SIGKILL)
        mine += [deposit(api, plain["api_key"], plain["siren"], f"APRES_{i}") for i in range(3)]

        deadline = time.monotonic() + 180
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = {}
            for demo in demos:
                docs = httpx.get(f"{api}/api/v1/documents", headers={"Authorization": f"Bearer {demo['api_key']}"},
                                 timeout=30).json()["documents"]
                states.update({d["id"]: d["state"] for d in docs})
            if len(states) == len(mine) + len(demos) and set(states.values()) == {"archived"}:
                break
            time.sleep(1)
        assert set(mine) <= set(states) and set(states.values()) == {"archived"}, (states, up.output()[-3000:])

        assert up.child("tansu") != broker  # a new broker, on the same port
        sims = up.endpoints["simulators"]
        transmissions = httpx.get(f"{sims['s2low']}/_admin/transmissions", timeout=30).json()
        assert transmissions["duplicates"] == 0
        numeros = [t["numero"] for t in transmissions["transactions"]]
        assert len(numeros) == len(set(numeros)) == len(mine) + len(demos)
        transfers = httpx.get(f"{sims['asalae']}/_admin/transfers", timeout=30).json()
        assert transfers["duplicates"] == 0 and len(transfers["transfers"]) == len(mine) + len(demos)
        folders = httpx.get(f"{sims['iparapheur']}/_admin/folders", timeout=30).json()
        # The demo's parapheur collectivité signed once, and its folder was deleted only after the
        # bus recorded the signed files (bus.stages.runner calls the connector's after_outcome).
        assert folders["duplicates"] == 0 and [f["state"] for f in folders["folders"]] == ["DELETED"]
    assert "broker exited with code -9; restarting it" in up.output()
