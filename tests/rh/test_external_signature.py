"""Signature à la volée in the i-Parapheur simulator: the employer signs, then the agent (external
signer: consent, one-time code by SMS, signature) - or refuses, which rejects the folder."""

from __future__ import annotations

import io

import httpx
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from connectors.base import (
    Collectivite,
    InputFile,
    PermanentConnectorError,
    StageJob,
    StageResult,
)
from connectors.signature.iparapheur import IparapheurConnector
from connectors.signature.pades import verify_pdf
from connectors.signature.pdf import make_pdf

AGENT = {"matricule": "A042", "agent_email": "camille.martin@example.fr", "agent_mobile": "+33 6 12 34 56 78",
         "objet": "Contrat de travail"}


def contract_job(reference: str, **metadata: str) -> StageJob:
    return StageJob(document_id="c1", reference=reference, flow="rh-contrat", stage="signature",
                    collectivite=Collectivite("214400152", "Commune", "044", "1", "31"),
                    metadata={**AGENT, **metadata},
                    files=[InputFile("contrat.pdf", "document", make_pdf("Contrat de travail", ["Article 1"]))])


def connector(simulator, sim_settings) -> IparapheurConnector:  # type: ignore[no-untyped-def]
    return IparapheurConnector(simulator.base_url, sim_settings.username, sim_settings.password, "Collectivités",
                               "Secrétariat général", "RH", "Contrat de travail", timeout=5.0)


async def final(conn: IparapheurConnector, job: StageJob, remote_id: str) -> StageResult:
    for _ in range(20):
        result = await conn.poll(job, remote_id)
        if result.status != "pending":
            return result
    raise AssertionError("folder never left pending")


async def test_employer_then_agent_sign(simulator, sim_settings) -> None:  # type: ignore[no-untyped-def]
    conn = connector(simulator, sim_settings)
    job = contract_job("rh-contrat:c1:signature:1")
    try:
        remote_id, _ = await conn.submit(job)
        result = await final(conn, job, remote_id)
    finally:
        await conn.aclose()
    assert result.status == "done"
    assert result.fields["signer"] == "Signataire externe"
    signed = next(f for f in result.files if f.role == "signed_document").data
    assert len(PdfFileReader(io.BytesIO(signed)).embedded_signatures) == 2
    assert verify_pdf(signed).intact
    async with httpx.AsyncClient() as client:
        folders = (await client.get(f"{simulator.base_url}/_admin/folders")).json()["folders"]
    folder = next(f for f in folders if f["name"] == job.reference)
    assert folder["events"] == ["CREATE", "START", "SIGNATURE", "EXTERNAL_SIGNATURE", "ARCHIVE"]
    steps = [s["step"] for s in folder["external"]["log"]]
    assert steps == ["invitation", "consent", "otp_sent", "otp_verified", "signature"]
    assert folder["external"]["phone"].endswith("78") and "12 34" not in folder["external"]["phone"]


async def test_agent_refusal_rejects_with_the_reason(simulator, sim_settings) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient() as client:
        (await client.post(f"{simulator.base_url}/_admin/faults", json={"external_refuse_next": 1})).raise_for_status()
    conn = connector(simulator, sim_settings)
    job = contract_job("rh-contrat:c2:signature:1")
    try:
        result = await final(conn, job, (await conn.submit(job))[0])
    finally:
        await conn.aclose()
    assert result.status == "rejected"
    assert result.reason == sim_settings.external_refusal_reason
    assert result.fields["rejected_by"] == "Signataire externe"


async def test_external_signer_needs_mail_and_mobile(simulator, sim_settings) -> None:  # type: ignore[no-untyped-def]
    conn = connector(simulator, sim_settings)
    job = contract_job("rh-contrat:c3:signature:1", agent_mobile="")
    try:
        with pytest.raises(PermanentConnectorError, match="agent_mobile"):
            await conn.submit(job)
    finally:
        await conn.aclose()
