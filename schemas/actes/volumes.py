"""What an ACTES deposit adds to the volume counters: one acte of its nature (DE, AR, AI...)."""

from __future__ import annotations

from typing import Any

from schemas.actes.naming import NATURES


def volume_counts(meta: dict[str, Any]) -> dict[str, int]:
    try:
        nature = NATURES[int(meta.get("nature") or 0)]
    except (KeyError, TypeError, ValueError):
        return {}
    return {f"actes_nature_{nature.abbr}": 1}
