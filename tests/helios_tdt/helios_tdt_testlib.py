"""Shared helpers of the HELIOS TdT tests: PES variants of the real sample, signed when possible."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
from lxml import etree

from connectors.simulators.s2low import AuthorityIn, S2lowSimSettings, create_app
from connectors.simulators.server import ServerThread
from tests.sim_servers import server_pool

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
SAMPLE = SAMPLES / "pes_aller__PESALR2_25060187900027_190328_001__stela.xml"
SIREN = "755800646"  # the sample's IdColl is 75580064600099
LOGIN, PASSWORD = "berger-levrault", "secret-bl"
OTHER_SIREN, OTHER_LOGIN, OTHER_PASSWORD = "210600235", "commune-a", "secret-a"
FROZEN = datetime(2024, 5, 2, 10, 0, 0)
DSIG = "http://www.w3.org/2000/09/xmldsig#"


def xades() -> Any | None:
    """`connectors.signature.xades` when it can both sign and verify, else None."""
    try:
        from connectors.signature import xades as module
    except ImportError:
        return None
    return module if hasattr(module, "sign_pes") and hasattr(module, "verify_pes") else None


SIGNING = xades() is not None


@lru_cache(maxsize=1)
def unsigned_sample() -> bytes:
    """The real sample with its signature removed (it is re-signed per variant)."""
    tree = etree.parse(str(SAMPLE), etree.XMLParser(remove_blank_text=False, resolve_entities=False, no_network=True))
    for sig in tree.getroot().iter(f"{{{DSIG}}}Signature"):
        sig.getparent().remove(sig)
    body = etree.tostring(tree, encoding="ISO-8859-1", xml_declaration=False)
    return b'<?xml version="1.0" encoding="ISO-8859-1"?>\n' + body


@lru_cache(maxsize=1)
def _certificate() -> tuple[Path, Path]:
    """One self-signed test certificate per test session (in a private temporary directory)."""
    from connectors.signature.certificates import make_test_certificate

    return make_test_certificate("Ordonnateur Test", "Commune de Berger-Levrault", Path(tempfile.mkdtemp()))


def pes_variant(nom_fic: str, *, sign: bool = SIGNING, edit: Callable[[bytes], bytes] | None = None) -> bytes:
    """The sample with NomFic `nom_fic` (and `edit` applied), signed when the XAdES module exists."""
    data = re.sub(rb'<NomFic V="[^"]*"/>', b'<NomFic V="' + nom_fic.encode("ascii") + b'"/>', unsigned_sample(), 1)
    if edit is not None:
        data = edit(data)
    if sign and SIGNING:
        module = xades()
        cert, key = _certificate()
        data = module.sign_pes(data, cert_path=cert, key_path=key)
    return data


def settings(**overrides: Any) -> S2lowSimSettings:
    helios = {"require_signature": SIGNING, **overrides.pop("helios", {})}
    base: dict[str, Any] = {
        "authorities": {
            SIREN: AuthorityIn(login=LOGIN, password=PASSWORD, departement="078", arrondissement="1",
                               nature="31", name="Commune de Berger-Levrault"),
            OTHER_SIREN: AuthorityIn(login=OTHER_LOGIN, password=OTHER_PASSWORD, departement="006",
                                     arrondissement="2", nature="31", name="Commune A"),
        },
        "frozen_at": FROZEN,
        "helios": helios,
    }
    return S2lowSimSettings(**{**base, **overrides})


def server_factory() -> Iterator[Callable[..., ServerThread]]:
    return server_pool(lambda **overrides: create_app(settings(**overrides)))


def admin(server: ServerThread, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, server.base_url + path, **kwargs)
    response.raise_for_status()
    return response.json()


def advance(server: ServerThread, seconds: float) -> None:
    admin(server, "POST", "/_admin/clock/advance", json={"seconds": seconds})
