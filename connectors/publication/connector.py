"""The `publication` stage: stamps the acte with its mentions and puts it on the registry.

There is no remote side: the effect is the published PDF, stored by the runner with the document's
files (role `published_document`, content-addressed by its SHA-256) and served by the registry
once the stage is done. `lookup` therefore has nothing to find; stamping again after a crash is
harmless, since nothing was public before the stage ended. The remote id records the facts the
poll turns into the document's replies (publication date, AR date, IDActe), so a poll needs no file.
"""

from __future__ import annotations

import asyncio
from datetime import date

from connectors.base import OutputFile, PermanentConnectorError, StageJob, StageResult
from connectors.publication import urls
from connectors.publication.stamp import Mentions, StampError, stamp_pdf
from schemas.actes.messages import parse_actes_message
from schemas.actes.metadata import today_paris
from schemas.errors import SchemaError

PUBLISHED_ROLE = "published_document"
SOURCE_ROLES = ("signed_document", "document")


class PublicationConnector:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    async def lookup(self, job: StageJob) -> str | None:
        return None

    async def submit(self, job: StageJob) -> tuple[str, list[OutputFile]]:
        source = next((f for role in SOURCE_ROLES for f in job.files if f.role == role), None)
        if source is None:
            raise PermanentConnectorError("no acte to publish (no document nor signed_document)")
        id_acte, received_on = _acknowledgement(job)
        meta = job.metadata
        mentions = Mentions(published_on=today_paris(), received_on=received_on, id_acte=id_acte,
                            auteur=f"{meta.get('auteur_prenom', '')} {meta.get('auteur_nom', '')}".strip(),
                            qualite=str(meta.get("auteur_qualite") or ""))
        try:
            published = await asyncio.to_thread(stamp_pdf, source.data, mentions)
        except StampError as exc:
            raise PermanentConnectorError(f"cannot stamp {source.name}: {exc}") from exc
        remote_id = f"{mentions.published_on.isoformat()}/{received_on.isoformat()}/{id_acte}"
        return remote_id, [OutputFile(name=f"{id_acte}.pdf", role=PUBLISHED_ROLE, data=published,
                                      media_type="application/pdf")]

    async def poll(self, job: StageJob, remote_id: str) -> StageResult:
        try:
            published, received, id_acte = remote_id.split("/", 2)
            published_on, received_on = date.fromisoformat(published), date.fromisoformat(received)
        except ValueError as exc:
            raise PermanentConnectorError(f"unreadable publication reference {remote_id!r}") from exc
        return StageResult("done", fields={
            "date_publication": published_on.isoformat(),
            "publication_url": urls.absolute(self.base_url, urls.pdf_path(job.collectivite.siren, id_acte)),
            # Executory once both transmitted to the préfet and published (L2131-1 CGCT).
            "executoire_le": max(published_on, received_on).isoformat(),
        })

    async def aclose(self) -> None:
        return None


def _acknowledgement(job: StageJob) -> tuple[str, date]:
    """IDActe and reception date, from the préfecture's ARActe: the mentions quote the AR itself."""
    aracte = next((f for f in job.files if f.role == "aracte"), None)
    if aracte is None:
        raise PermanentConnectorError("no ARActe: an acte is published after the préfecture acknowledged it")
    try:
        fields = parse_actes_message(aracte.data).fields
    except SchemaError as exc:
        raise PermanentConnectorError(f"unreadable ARActe: {exc.message}") from exc
    if not fields.get("id_acte") or not fields.get("date_reception"):
        raise PermanentConnectorError("the ARActe gives no IDActe or no DateReception")
    return fields["id_acte"], fields["date_reception"]
