"""The one small interface between the flow engine and the outside world.

Every stage kind (signature, tdt, sae, delivery) is served by a connector that implements
:class:`StageConnector`. The engine never imports a concrete connector: it asks the registry
(``connectors.registry``) for the connector a collectivité is configured with.

Idempotency contract (docs/invariants.md §2, "no external effect twice"): ``job.reference`` is
our own stable reference for (document, stage, generation). Before calling ``submit`` again after
a crash, the stage runner calls ``lookup(job)``; a connector must find an effect it already made
at the remote side by that reference and return its remote id instead of ``None``.

A remote side that knows nothing of our reference (S²low) is searched by what the effect carried:
such a connector implements :class:`IntentRecorder`; the runner records its ``intent_facts`` in
the effects ledger before the first call and hands them back in ``job.intent`` to every later
``lookup`` and ``submit`` of that effect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class InputFile:
    """A file of the document, handed to a connector (bytes already read from the blob store)."""

    name: str
    role: str  # "document", "annexe", "signed_document", ...
    data: bytes
    media_type: str = "application/pdf"


@dataclass(frozen=True)
class Collectivite:
    siren: str
    name: str
    departement: str  # 3 characters, e.g. "034", "02A"
    arrondissement: str  # 1 digit
    nature_code: str  # authority type, 2 digits, e.g. "31" commune
    classification_date: str | None = None  # YYYY-MM-DD of the préfecture classification
    classification_xml: bytes | None = None  # the RetourClassification message

    @classmethod
    def from_record(cls, record: Any) -> Collectivite:
        """From an object with the same attribute names (the store's row), the date as ISO text."""
        day = record.classification_date
        return cls(siren=record.siren, name=record.name, departement=record.departement,
                   arrondissement=record.arrondissement, nature_code=record.nature_code,
                   classification_date=day.isoformat() if day else None,
                   classification_xml=record.classification_xml)


@dataclass(frozen=True)
class StageJob:
    document_id: str
    reference: str  # our own reference, unique per (document, stage, generation)
    flow: str
    stage: str
    collectivite: Collectivite
    metadata: dict[str, Any]
    files: list[InputFile]
    options: dict[str, Any] = field(default_factory=dict)
    # Facts recorded with this effect's intent (IntentRecorder.intent_facts); empty before that.
    intent: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputFile:
    """A file a connector brings back (signed PDF, transmitted archive, reply XML, ...)."""

    name: str
    role: str
    data: bytes
    media_type: str = "application/octet-stream"


PollStatus = Literal["pending", "done", "rejected"]


@dataclass
class StageResult:
    """What a stage produced. ``status`` is ``done`` (success), ``rejected`` (a business refusal:
    préfecture anomaly, SAE refusal, parapheur rejection) or ``pending`` (ask again later)."""

    status: PollStatus
    files: list[OutputFile] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


class ConnectorError(Exception):
    """A technical failure worth retrying (HTTP 5xx, timeout, malformed answer)."""


class PermanentConnectorError(ConnectorError):
    """A failure that retrying cannot fix (KO answer for invalid input, bad configuration)."""


class RemoteRefusal(Exception):
    """The remote side refused the effect outright, for a business reason (unknown recipient,
    closed digital safe...): the stage ends rejected with ``reason``; retrying cannot help."""

    def __init__(self, reason: str, fields: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fields = dict(fields or {})


class StageConnector(Protocol):
    async def lookup(self, job: StageJob) -> str | None:
        """Return the remote id of an effect already made for ``job.reference``, or ``None``."""

    async def submit(self, job: StageJob) -> tuple[str, list[OutputFile]]:
        """Perform the external effect once. Returns the remote id and any file produced while
        submitting (e.g. the transmitted ``.tar.gz``)."""

    async def poll(self, job: StageJob, remote_id: str) -> StageResult:
        """Ask the remote side where the effect stands; ``done``/``rejected`` carry the result.
        ``job.files`` is empty unless the connector sets ``poll_reads_files = True``: a poll
        usually needs the remote id only, and reading (and decrypting) the inputs at every poll
        of an acte waiting for its AR is wasted work."""

    async def aclose(self) -> None: ...


class IntentRecorder(Protocol):
    """A connector whose ``lookup`` needs facts about what was sent (the remote side has no lookup
    by our reference)."""

    async def intent_facts(self, job: StageJob) -> dict[str, Any]:
        """JSON-serialisable facts about the effect about to be made, recorded before the call."""


class CancellingConnector(Protocol):
    """A connector that can cancel an effect the remote side already acknowledged (ACTES
    annulation 6-1 → ARAnnulation 6-2)."""

    async def cancel(self, remote_id: str, collectivite: Collectivite | None = None
                     ) -> tuple[str | None, list[OutputFile]]:
        """Ask for the cancellation of ``remote_id`` (an effect of ``collectivite``). Returns the
        cancellation's own remote id and files (None when one is already under way: an earlier
        request got through)."""

    async def cancellation(self, remote_id: str, cancel_id: str | None) -> StageResult:
        """Where the cancellation stands: ``done`` once the other side acknowledged it."""
