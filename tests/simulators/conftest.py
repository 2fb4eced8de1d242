"""Simulators run as real HTTP servers: fixtures shared with tests/connectors."""

from tests.sim_servers import start_asalae, start_s2low  # noqa: F401  (pytest fixtures)
