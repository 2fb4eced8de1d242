"""Simulators run as real HTTP servers (uvicorn in a background thread) on a free local port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest

from connectors.simulators.asalae import AsalaeSimSettings
from connectors.simulators.asalae import create_app as create_asalae_app
from connectors.simulators.s2low import AuthorityIn, S2lowSimSettings
from connectors.simulators.s2low import create_app as create_s2low_app
from connectors.simulators.server import ServerThread

SIREN = "210600235"
LOGIN = "commune-a"
PASSWORD = "secret-a"
FROZEN = datetime(2024, 5, 2, 10, 0, 0)


def s2low_settings(**overrides: Any) -> S2lowSimSettings:
    base: dict[str, Any] = {
        "authorities": {
            SIREN: AuthorityIn(login=LOGIN, password=PASSWORD, departement="006", arrondissement="2",
                               nature="31", name="Commune A")
        },
        "frozen_at": FROZEN,
    }
    return S2lowSimSettings(**{**base, **overrides})


def server_pool(make_app: Callable[..., Any]) -> Iterator[Callable[..., ServerThread]]:
    """Yields `start(**overrides)`, which runs a fresh simulator server; all are stopped at the end."""
    servers: list[ServerThread] = []

    def start(**overrides: Any) -> ServerThread:
        server = ServerThread(make_app(**overrides))
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def start_s2low() -> Iterator[Callable[..., ServerThread]]:
    yield from server_pool(lambda **overrides: create_s2low_app(s2low_settings(**overrides)))


@pytest.fixture
def start_asalae() -> Iterator[Callable[..., ServerThread]]:
    yield from server_pool(
        lambda **overrides: create_asalae_app(AsalaeSimSettings(**{"frozen_at": FROZEN, **overrides}))
    )
