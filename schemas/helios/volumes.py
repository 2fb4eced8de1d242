"""What a PES deposit adds to the volume counters, from the summary the deposit check stored:
bordereaux, mandats (pièces of dépense bordereaux), titres (pièces of recette bordereaux), PJ."""

from __future__ import annotations

from typing import Any


def volume_counts(meta: dict[str, Any]) -> dict[str, int]:
    bordereaux = [b for b in meta.get("bordereaux") or [] if isinstance(b, dict)]
    return {
        "pes_bordereaux": len(bordereaux),
        "pes_mandats": sum(int(b.get("pieces") or 0) for b in bordereaux if b.get("domain") == "depense"),
        "pes_titres": sum(int(b.get("pieces") or 0) for b in bordereaux if b.get("domain") == "recette"),
        "pes_pj": int(meta.get("pj_count") or 0),
    }
