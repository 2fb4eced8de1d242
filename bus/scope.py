"""Which collectivités an API key reaches: the one scope predicate of the bus.

A key holds a list of SIRENs; ``"*"`` among them means every collectivité. Every face (REST API,
console, Pastell API, CLI) asks these functions, never the list itself.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol

EVERY_COLLECTIVITE = "*"


class Scoped(Protocol):
    sirens: list[str]


def _sirens(scope: Scoped | Collection[str]) -> Collection[str]:
    return scope.sirens if hasattr(scope, "sirens") else scope  # type: ignore[union-attr]


def reaches_all(scope: Scoped | Collection[str]) -> bool:
    return EVERY_COLLECTIVITE in _sirens(scope)


def in_scope(scope: Scoped | Collection[str], siren: str) -> bool:
    """Whether a key (or a list of SIRENs) reaches the collectivité ``siren``."""
    sirens = _sirens(scope)
    return EVERY_COLLECTIVITE in sirens or siren in sirens


def scope_sirens(scope: Scoped | Collection[str]) -> list[str] | None:
    """The SIRENs a key reaches, or None for every collectivité."""
    return None if reaches_all(scope) else list(_sirens(scope))


def restrict(query: Any, siren_column: Any, scope: Scoped | Collection[str]) -> Any:
    """``query`` limited to the rows whose ``siren_column`` the key reaches."""
    sirens = scope_sirens(scope)
    return query if sirens is None else query.where(siren_column.in_(sirens))
