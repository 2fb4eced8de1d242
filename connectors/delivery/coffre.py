"""Delivery stage: deposit a document in the recipient's digital safe and collect the receipt.

Speaks a provider-neutral REST API (the one `connectors.simulators.coffre` serves); a real
provider plugs in by configuration (`url`, `api_key`, `document_type`, `recipient_field`).

* ``lookup`` finds an earlier deposit by our reference (``GET /deposits?reference=``);
* ``submit`` deposits the first input file; an unknown recipient is a business refusal
  (:class:`RemoteRefusal`: the document ends undeliverable, it is not retried);
* ``poll`` reads the deposit: ``delivered`` brings the receipt (a JSON file, role
  ``delivery_receipt``), ``refused`` ends the stage rejected with the safe's message.

Errors never quote the recipient's identity: reasons carry codes and the matricule only.
"""

from __future__ import annotations

import json
from typing import Any

from connectors.base import (
    ConnectorError,
    OutputFile,
    PermanentConnectorError,
    RemoteRefusal,
    StageJob,
    StageResult,
)
from connectors.http import HttpClient, HttpResponse

API = "/api/v1/deposits"
REFUSALS = {"unknown_recipient": "Agent inconnu du coffre-fort numérique / no digital safe for this agent"}


class CoffreConnector:
    def __init__(self, base_url: str, api_key: str, *, document_type: str = "bulletin_de_paie",
                 recipient_field: str = "coffre", timeout: float = 30.0) -> None:
        self._client = HttpClient("digital safe", base_url, headers={"X-Api-Key": api_key}, timeout=timeout)
        self.document_type = document_type
        self.recipient_field = recipient_field

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> HttpResponse:
        return await self._client.request(method, path, **kwargs)

    @staticmethod
    def _body(response: HttpResponse) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError as exc:
            raise ConnectorError("digital safe: the answer is not JSON") from exc
        if not isinstance(body, dict):
            raise ConnectorError("digital safe: the answer is not a JSON object")
        return body

    async def lookup(self, job: StageJob) -> str | None:
        body = self._body(await self._call("GET", API, params={"reference": job.reference}))
        found = body.get("deposits") or []
        return str(found[0]["id"]) if found and isinstance(found[0], dict) and found[0].get("id") else None

    async def submit(self, job: StageJob) -> tuple[str, list[OutputFile]]:
        if not job.files:
            raise PermanentConnectorError("nothing to deliver: the job has no file")
        recipient = str(job.metadata.get(self.recipient_field) or "")
        if not recipient:
            raise RemoteRefusal(f"Pas de coffre-fort indiqué / no digital safe given ({self.recipient_field})")
        document = job.files[0]
        response = await self._call("POST", API, data={
            "reference": job.reference, "recipient": recipient, "document_type": self.document_type,
            "periode": str(job.metadata.get("periode") or ""),
        }, files={"file": (document.name, document.data, document.media_type)}, accept=(404, 409))
        body = self._body(response)
        if response.status_code == 201 and body.get("id"):
            return str(body["id"]), []
        code = str((body.get("error") or {}).get("code") or "")
        if response.status_code == 409 and body.get("id"):
            return str(body["id"]), []  # our own earlier deposit, whose answer was lost
        if code in REFUSALS:
            raise RemoteRefusal(f"{REFUSALS[code]} (matricule {job.metadata.get('matricule', '?')})",
                                {"delivery_error": code})
        raise PermanentConnectorError(f"digital safe refused the deposit: HTTP {response.status_code} {code}")

    async def poll(self, job: StageJob, remote_id: str) -> StageResult:
        response = await self._call("GET", f"{API}/{remote_id}", accept=(404,))
        if response.status_code == 404:
            raise PermanentConnectorError(f"digital safe has no deposit {remote_id}")
        body = self._body(response)
        status = body.get("status")
        if status == "pending":
            return StageResult("pending")
        if status == "refused":
            return StageResult("rejected", reason=f"{body.get('message') or 'refusé par le coffre-fort'} "
                               f"(matricule {job.metadata.get('matricule', '?')})",
                               fields={"delivery_id": remote_id, "delivery_error": body.get("code")})
        if status == "delivered" and isinstance(body.get("receipt"), dict):
            receipt = body["receipt"]
            data = json.dumps(receipt, ensure_ascii=False, indent=2).encode()
            return StageResult("done", files=[OutputFile("accuse_depot_coffre.json", "delivery_receipt", data,
                                                         "application/json")],
                               fields={"delivery_id": remote_id, "delivery_receipt": receipt.get("id"),
                                       "delivered_at": receipt.get("delivered_at")})
        raise ConnectorError(f"digital safe: unexpected deposit status {status!r}")
