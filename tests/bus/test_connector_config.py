"""A collectivité's connector configuration is typed (connectors/config.py,
bus/collectivite_config.py): a wrong one is refused when it is written, not at the first document."""

from __future__ import annotations

import pytest

from bus.collectivite_config import connectors_of
from bus.collectivites import InvalidCollectivite, add_collectivite, simulator_connectors
from bus.publication import configure
from connectors.config import AsalaeConfig, InvalidConnectorConfig, options_of, parse_connector
from schemas.actes.publication import PublicationSettings
from tests.conftest import SIREN_A


def test_each_slot_is_checked_against_its_connector_kind() -> None:
    sae = parse_connector({"kind": "asalae", "url": "sim://asalae", "originating_agency": SIREN_A})
    assert isinstance(sae, AsalaeConfig) and sae.archival_agency == "ARCHIVES"  # the documented default
    with pytest.raises(InvalidConnectorConfig, match="originating_agency"):
        parse_connector({"kind": "asalae", "url": "sim://asalae"})
    with pytest.raises(InvalidConnectorConfig, match="pasword"):
        parse_connector({"kind": "s2low", "url": "https://s2low.example", "pasword": "typo"})
    with pytest.raises(InvalidConnectorConfig, match="kind"):
        parse_connector({"kind": "fast", "url": "https://fast.example"})
    secrets = {o.name for o in options_of("s2low") if o.secret}
    assert secrets == {"password"}
    assert [o.name for o in options_of("iparapheur") if o.many] == ["types", "subtypes"]


async def test_a_collectivite_with_an_incomplete_connector_is_refused(store) -> None:  # type: ignore[no-untyped-def]
    async with store.transaction() as session:
        with pytest.raises(InvalidCollectivite, match="tdt"):
            await add_collectivite(session, siren=SIREN_A, name="Commune A", departement="006",
                                   connectors={"tdt": {"kind": "s2low"}})


async def test_updating_a_collectivite_keeps_its_publication_settings(store) -> None:  # type: ignore[no-untyped-def]
    async with store.transaction() as session:
        await add_collectivite(session, siren=SIREN_A, name="Commune A", departement="006")
        await configure(session, SIREN_A, PublicationSettings(natures=[1]))
    async with store.transaction() as session:  # `dematbus collectivite add` again, for its name
        coll = await add_collectivite(session, siren=SIREN_A, name="Commune A (nouveau nom)", departement="006",
                                      connectors=simulator_connectors(SIREN_A))
        config = connectors_of(coll)
    assert config.flow_options("actes")["publication"]["natures"] == [1]
    assert config.flow_options("helios") == {"signature_default": False}  # what was restated wins
