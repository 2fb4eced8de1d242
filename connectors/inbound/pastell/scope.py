"""What a key may reach through the Pastell API: Pastell's rules (a key without a role reaches no
entité; administration rights are the admin role) on top of the bus's one scope predicate
(bus/scope.py)."""

from __future__ import annotations

from collections.abc import Iterable

from bus.scope import in_scope, reaches_all
from bus.store.models import ApiKey
from connectors.inbound.pastell.errors import PastellError

ROOT = 0  # Pastell's "Entité racine": a key for every collectivité ("*") has its roles there


def reaches(key: ApiKey, siren: str) -> bool:
    """A key without any role reaches nothing, like a Pastell user without a role on the entité."""
    return bool(key.roles) and in_scope(key, siren)


def covers_all(key: ApiKey) -> bool:
    return reaches_all(key)


def covers(key: ApiKey, sirens: Iterable[str]) -> bool:
    """Whether `key` reaches every SIREN of another key's scope ("*" only from "*")."""
    sirens = list(sirens)
    return covers_all(key) or (not reaches_all(sirens) and all(reaches(key, s) for s in sirens))


def forbidden(id_e: int | str, right: str) -> PastellError:
    return PastellError(403, f"Acces interdit id_e={id_e}, droit={right}")


def require_admin(key: ApiKey, id_e: int | str, right: str) -> None:
    """Pastell's administration rights (`utilisateur:edition`, `connecteur:edition`…) are the
    dematbus `admin` role."""
    if "admin" not in key.roles:
        raise forbidden(id_e, right)


def require_root_admin(key: ApiKey, right: str) -> None:
    """Rights on the root entité: an admin key for every collectivité."""
    if "admin" not in key.roles or not covers_all(key):
        raise forbidden(ROOT, right)
