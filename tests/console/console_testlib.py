"""Documents written straight into the store (real journal hash chain) for the console's HTTP
tests, a client that logs in like a browser does (form, then the session cookie), and a reader
of the deposit forms that posts them back as a browser would."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from datetime import datetime
from typing import Any

import httpx

from bus.store import journal
from bus.store.apikeys import create_key
from bus.store.db import Store
from bus.store.models import Document, File
from tests.conftest import SIREN_A, SIREN_B


@dataclass
class Seeded:
    keys: dict[str, str]
    ids: dict[str, str] = field(default_factory=dict)  # label -> document id


# label: (siren, flow, state, stage, numero, objet, created, reason, file name)
DOCS: dict[str, tuple[str, str, str, str | None, str, str, datetime, str | None, str]] = {
    "budget": (SIREN_A, "actes", "archived", "sae", "DELIB_2026_001", "Budget primitif 2026",
               datetime(2026, 3, 2, 9), None, "budget.pdf"),
    "voirie": (SIREN_A, "actes", "error", "tdt", "ARR_2026_014", "Arrêté de voirie rue des Écoles",
               datetime(2026, 3, 15, 10), "S2low HTTP 500 on actes_transac_create.php (after 4 attempts)", "voirie.pdf"),
    "cantine": (SIREN_A, "actes", "error", "tdt", "DELIB_2026_020", "Tarifs de la cantine",
                datetime(2026, 4, 1, 11), "S2low HTTP 503 on actes_transac_create.php (after 4 attempts)", "cantine.pdf"),
    "pes": (SIREN_A, "helios", "error", "tdt", "PES_AR_0042.xml", "",
            datetime(2026, 4, 20, 8), "certificate expired on 2026-04-19", "PES_AR_0042.xml"),
    "other": (SIREN_B, "actes", "error", "tdt", "B_DELIB_7", "Délibération de la commune B",
              datetime(2026, 4, 2, 9), "S2low HTTP 500 on actes_transac_create.php (after 4 attempts)", "b.pdf"),
}


async def seed(store: Store) -> Seeded:
    """Needs the conftest `keys` collectivités (A and B) to exist."""
    seeded = Seeded(keys={})
    async with store.transaction() as session:
        seeded.keys["operator_a"] = await create_key(session, [SIREN_A], ["operator"], name="Opérateur A")
        seeded.keys["reporter_a"] = await create_key(session, [SIREN_A], ["reporter"], name="Direction A")
        seeded.keys["depositor_a"] = await create_key(session, [SIREN_A], ["depositor"], name="Secrétariat A")
        seeded.keys["rh_a"] = await create_key(session, [SIREN_A], ["rh"])
        for label, (siren, flow, state, stage, numero, objet, created, reason, name) in DOCS.items():
            doc_id = str(uuid.uuid4())
            seeded.ids[label] = doc_id
            meta: dict[str, Any] = {"objet": objet, "numero_interne": numero} if flow == "actes" else {"nom_fic": numero}
            session.add(Document(id=doc_id, flow=flow, siren=siren, state=state, stage=stage, meta=meta,
                                 business_key=numero, reason=reason, created_at=created, updated_at=created))
            await session.flush()
            session.add(File(document_id=doc_id, role="document", name=name, size=4, sha256="0" * 64,
                             media_type="application/pdf"))
            await journal.append(session, doc_id, "deposited", "deposited", {})
            if state != "deposited":
                await journal.append(session, doc_id, "stage.failed" if state == "error" else "stage.done", state,
                                     {"stage": stage})
    return seeded


async def login(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.post("/console/login", data={"key": key, "next": ""})


class FormPage(HTMLParser):
    """What a console form shows: its hidden fields, its labels (text → the id they are for), the
    ids on the page, each control's attributes, and the field errors (id → code)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.hidden: list[tuple[str, str]] = []
        self.labels: dict[str, str] = {}
        self.ids: set[str] = set()
        self.controls: dict[str, dict[str, str]] = {}  # id → attributes (input, select, textarea)
        self.selected: dict[str, str] = {}  # select id → the selected option's value
        self.errors: dict[str, str] = {}  # error element id → data-error-code
        self._label: tuple[str, list[str]] | None = None
        self._select: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "input" and a.get("type") == "hidden":
            self.hidden.append((a.get("name", ""), a.get("value", "")))
        elif tag in ("input", "select", "textarea") and "id" in a:
            self.controls[a["id"]] = a
        if tag == "select":
            self._select = a.get("id")
        if tag == "option" and self._select and "selected" in a:
            self.selected[self._select] = a.get("value", "")
        if tag == "label":
            self._label = (a.get("for", ""), [])
        if "data-error-code" in a and a.get("class") == "field-error":
            self.errors[a.get("id", "")] = a["data-error-code"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self._label:
            target, text = self._label
            self.labels[" ".join("".join(text).split())] = target
            self._label = None
        if tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._label:
            self._label[1].append(data)

    def described_by(self, control_id: str) -> list[str]:
        return self.controls[control_id].get("aria-describedby", "").split()


async def submit(client: httpx.AsyncClient, page: httpx.Response, values: dict[str, str],
                 files: list[tuple[str, tuple[str, bytes, str]]] = (), drop: tuple[str, ...] = ()) -> httpx.Response:  # type: ignore[assignment]
    """Posts a deposit form as a browser would: its hidden fields (less `drop`), the values, the files."""
    form = FormPage(page.text)
    action = re.search(r'<form class="deposit" method="post" action="([^"]+)"', page.text)
    assert action, "no deposit form on the page"
    fields = [(k, v) for k, v in form.hidden if k not in drop] + list(values.items())
    parts = [(k, (None, v.encode())) for k, v in fields] + list(files)
    return await client.post(action.group(1), files=parts or None)
