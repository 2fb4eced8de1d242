"""Namespaces of the HELIOS PES v2 messages (docs/protocols.md §3)."""

import re

PES_ALLER_NS = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller"
PES_ACQUIT_NS = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2"
PES_RETOUR_NS = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour"
# A PES_ACQUIT carries the namespace of its revision: `…/Rev0/retour/v2` today (PES_ACQUIT_NS, the
# one of PES_V2_Acquit_Autonome_V2.xsd), `…/Rev0/retour` in older files; the elements are the same.
_PES_ACQUIT_NS_RE = re.compile(r"http://www\.minefi\.gouv\.fr/cp/helios/pes_v2/Rev\d+/retour(?:/v\d+)?")
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
DS_SIGNATURE = f"{{{DSIG_NS}}}Signature"



def is_pes_acquit_ns(namespace: str | None) -> bool:
    """True for the namespace of any PES_ACQUIT revision."""
    return namespace is not None and _PES_ACQUIT_NS_RE.fullmatch(namespace) is not None


__all__ = ["DSIG_NS", "DS_SIGNATURE", "PES_ACQUIT_NS", "PES_ALLER_NS", "PES_RETOUR_NS", "is_pes_acquit_ns"]
