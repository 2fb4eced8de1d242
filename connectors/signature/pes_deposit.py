"""Deposit check of the HELIOS flow: a PES that arrives signed is verified, never trusted blindly.

Runs after `schemas.helios.deposit.check_deposit` (declared in `bus/flows/helios.yaml`): a broken
signature is refused at the door with `pes_signature_invalid`, and an unsigned file the bus is not
asked to sign with `pes_not_signed`, so nothing is stored.
"""

from __future__ import annotations

from typing import Any

from connectors.signature.xades import XadesError, verify_pes
from schemas.deposit import DepositContext, DepositFile


def check_signatures(metadata: dict[str, Any], document: DepositFile, annexes: list[DepositFile],
                     context: DepositContext) -> dict[str, Any]:
    if not metadata.get("already_signed"):
        if not metadata.get("signature"):
            raise XadesError("pes_not_signed",
                             "Le fichier doit arriver signé (signature: false) / the PES must arrive signed when "
                             "the bus is not asked to sign it")
        return metadata
    if context.path is None:
        return metadata
    checks = verify_pes(context.path.read_bytes())
    broken = [c for c in checks if not c.valid]
    if broken:
        detail = "; ".join(f"{c.target}: {c.reason}" for c in broken)
        raise XadesError("pes_signature_invalid",
                         f"La signature du fichier est invalide / invalid XAdES signature ({detail})")
    return {**metadata, "signatures": [{"target": c.target, "signer": c.signer_common_name,
                                        "signing_time": c.signing_time, "claimed_role": c.claimed_role}
                                       for c in checks]}
