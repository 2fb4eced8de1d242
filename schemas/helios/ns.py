"""Namespaces of the HELIOS PES v2 messages (§3)."""

PES_ALLER_NS = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller"
PES_ACQUIT_NS = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2"
PES_RETOUR_NS = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
DS_SIGNATURE = f"{{{DSIG_NS}}}Signature"

__all__ = ["DSIG_NS", "DS_SIGNATURE", "PES_ACQUIT_NS", "PES_ALLER_NS", "PES_RETOUR_NS"]
