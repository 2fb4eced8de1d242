"""`iparapheur_historique`: Pastell's i-Parapheur history file, rebuilt from the journal of the
document's signature stage (whatever signed it: i-Parapheur or a local PAdES signer)."""

from __future__ import annotations

from typing import Any

from lxml import etree

from bus.store.models import JournalEntry

STATUS = {"stage.started": "NonLu", "stage.submitted": "NonLu", "stage.done": "Signe",
          "stage.rejected": "RejetSignataire"}


def _entry(parent: etree._Element, timestamp: str, nom: str, status: str, annotation: str) -> None:
    log = etree.SubElement(parent, "LogDossier")
    for tag, text in (("timestamp", timestamp), ("nom", nom), ("status", status), ("annotation", annotation)):
        etree.SubElement(log, tag).text = text


def signature_entries(journal: list[JournalEntry]) -> list[JournalEntry]:
    return [e for e in journal if (e.detail or {}).get("stage") == "signature" and e.event in STATUS]


def build_history(journal: list[JournalEntry]) -> bytes:
    root = etree.Element("iparapheur_historique")
    retour = etree.SubElement(root, "MessageRetour")
    for tag, text in (("codeRetour", "OK"), ("message", ""), ("severite", "INFO")):
        etree.SubElement(retour, tag).text = text
    logs = etree.SubElement(root, "LogDossier")
    for entry in signature_entries(journal):
        detail: dict[str, Any] = entry.detail or {}
        when = entry.at.strftime("%Y-%m-%dT%H:%M:%S")
        if entry.event == "stage.done":
            _entry(logs, str(detail.get("signed_at") or when), str(detail.get("signer") or "Signataire"),
                   "Signe", "Signé")
            _entry(logs, when, "dematbus", "Archive", "Dossier récupéré et archivé")
        elif entry.event == "stage.rejected":
            _entry(logs, when, str(detail.get("rejected_by") or "Signataire"), "RejetSignataire",
                   str(detail.get("reason") or ""))
        else:
            _entry(logs, when, "dematbus", STATUS[entry.event], "Dossier transmis au circuit de signature")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
