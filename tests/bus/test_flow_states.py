"""States come from the flow files (bus/flows/*.yaml) and from nowhere else: `dematbus status
--watch` stops on each flow's terminal states and only there, the Prometheus counter labels every
state a flow declares, the console has a label for each, and `/api/v1/flows` serves them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from typer.testing import CliRunner

from bus import metrics
from bus.cli import app as cli
from bus.collectivites import add_collectivite
from bus.config import Settings
from bus.flows.definition import all_states, flow_names, load_flow
from bus.store.apikeys import create_key
from bus.store.db import Store
from bus.store.models import Document
from connectors.console.web import STATE_LABELS
from connectors.inbound.api import create_app
from connectors.simulators.server import ServerThread
from tests.conftest import SIREN_A

runner = CliRunner()


def _document_id(flow: str, state: str) -> str:
    return f"{flow}-{state}"


async def _seed(settings: Settings) -> str:
    """One document resting in each state of each flow, and an operator key that reads them."""
    store = Store(settings.db_url)
    await store.migrate()
    try:
        async with store.transaction() as session:
            await add_collectivite(session, siren=SIREN_A, name="Commune A", departement="006", arrondissement="2")
            key = await create_key(session, [SIREN_A], ["operator"])
            for flow in flow_names():
                for state in load_flow(flow).states:
                    session.add(Document(id=_document_id(flow, state), flow=flow, siren=SIREN_A, state=state))
        return key
    finally:
        await store.close()


@pytest.mark.timeout(180)
def test_status_watch_returns_on_each_terminal_state_of_each_flow(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    key = asyncio.run(_seed(settings))
    with ServerThread(create_app(settings)) as api:
        for flow in flow_names():
            definition = load_flow(flow)
            for state in definition.states:
                doc_id = _document_id(flow, state)
                if definition.is_terminal(state):
                    # --watch returns at once on a terminal state (it would loop forever otherwise).
                    result = runner.invoke(cli, ["status", doc_id, "--watch", "--json", "--api", api.base_url,
                                                 "--key", key])
                    assert result.exit_code == 0, result.output
                    shown = json.loads(result.output)
                    assert shown["state"] == state and shown["terminal"] is True
                else:
                    result = runner.invoke(cli, ["status", doc_id, "--json", "--api", api.base_url, "--key", key])
                    assert result.exit_code == 0, result.output
                    assert json.loads(result.output)["terminal"] is False, (flow, state)
        flows = httpx.get(f"{api.base_url}/api/v1/flows", headers={"Authorization": f"Bearer {key}"}).json()["flows"]
    served = {f["name"]: f for f in flows}
    assert set(served) == set(flow_names())
    for flow in flow_names():
        assert served[flow]["states"] == load_flow(flow).states
        assert served[flow]["terminal"] == load_flow(flow).terminal


def test_rh_bulletin_does_not_stop_at_delivered_and_does_stop_at_undeliverable() -> None:
    # The hand-written list this replaces stopped at `delivered` (an archive stage follows) and
    # never at `undeliverable`.
    bulletin = load_flow("rh-bulletin")
    assert not bulletin.is_terminal("delivered")
    assert bulletin.is_terminal("undeliverable")
    assert load_flow("pdf-signature").is_terminal("signed")


def _counted(flow: str, state: str) -> float:
    return REGISTRY.get_sample_value("dematbus_documents_total", {"flow": flow, "state": state}) or 0.0


def test_metrics_label_every_state_of_every_flow() -> None:
    for flow in flow_names():
        for state in load_flow(flow).states:
            before, other = _counted(flow, state), _counted(flow, "other")
            metrics.observe_transition(flow, None, state)
            assert _counted(flow, state) == before + 1, (flow, state)
            assert _counted(flow, "other") == other, f"{flow}: {state} counted as other"


def test_the_console_has_a_label_for_every_state() -> None:
    assert set(all_states()) <= set(STATE_LABELS), set(all_states()) - set(STATE_LABELS)
