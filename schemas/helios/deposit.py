"""Deposit rules of the HELIOS flow: one PES_Aller, no annexe, IdColl of the depositing collectivité.

`check_deposit` streams the stored file (`context.path`) through `read_pes_aller`, so a 300 MB PES
is checked without being loaded. Errors: `invalid_metadata` (MetadataError), `helios_no_annexes`,
`helios_no_file` (the bus gave no stored path), the `pes_*` codes of `schemas.helios.pes`,
`pes_wrong_idcoll`, and `pes_no_signable_id` for an unsigned file the bus is asked to sign that has
no `Id` to sign (neither on every Bordereau nor on the root: docs/protocols.md §3.2, Pastell's "ne contient
pas d'identifiant valide"), refused here rather than failing later at the signature stage.
"""

from __future__ import annotations

from typing import Any

from schemas.deposit import DepositContext, DepositFile
from schemas.helios.metadata import parse_helios_metadata
from schemas.helios.pes import NO_SIGNABLE_ID, HeliosError, check_idcoll, read_pes_aller

__all__ = ["check_deposit"]


def check_deposit(metadata: dict[str, Any], document: DepositFile, annexes: list[DepositFile],
                  context: DepositContext) -> dict[str, Any]:
    """Validate a PES deposit; return the normalised metadata stored with the document.

    `signature` is the metadata value, else `context.options["signature_default"]` (False).
    A file that is already signed keeps `signature` as asked: `already_signed` tells the signature
    stage to verify the existing XAdES rather than sign again.
    """
    meta = parse_helios_metadata(metadata)
    if annexes:
        raise HeliosError(
            "helios_no_annexes",
            "un PES se dépose seul, sans annexe (les PJ sont dans le PES) / a PES takes no annexes",
        )
    if context.path is None:
        raise HeliosError("helios_no_file", "fichier PES non disponible / the stored PES file is missing")
    summary = read_pes_aller(context.path)
    check_idcoll(summary, context.siren)
    signature = meta.signature if meta.signature is not None else bool(
        (context.options or {}).get("signature_default", False)
    )
    if signature and not summary.signed and summary.placement is None:
        raise HeliosError("pes_no_signable_id", NO_SIGNABLE_ID)
    return {
        "signature": signature,
        "nom_fic": summary.nom_fic,
        "id_coll": summary.id_coll,
        "id_post": summary.id_post,
        "cod_col": summary.cod_col,
        "cod_bud": summary.cod_bud,
        "already_signed": summary.signed,
        "bordereaux": [b.to_dict() for b in summary.bordereaux],
        "pj_count": summary.pj_count,
        # extras, useful downstream (S²low refuses a duplicate sha1, §2.4)
        "dte_str": summary.dte_str,
        "libelle_col_bud": summary.libelle_col_bud,
        "size": summary.size,
        "sha1": summary.sha1,
        "sha256": summary.sha256,
    }
