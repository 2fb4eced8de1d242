"""S²low's ACTES JSON scripts under ``/modules/actes/api/`` (s2low:controller/ActesAPIController.php),
added to the S²low simulator by :func:`connectors.simulators.s2low.create_app`.

* ``GET api/actes_status.php`` → the status list, ``{"-1": "Erreur", "0": "Annulé", …}``
* ``GET api/number_actes.php?status_id=<s>`` → ``{"status_id": s, "authority_id": a, "nb_transactions": n}``
  (transactions of the caller's authority whose last status is ``s``)
* ``GET api/list_actes.php?status_id=<s>&offset=<o>&limit=<l>&min_date=<Y-m-d>&max_date=<Y-m-d>`` →
  ``{"status_id", "authority_id", "offset", "limit", "transactions": [{"id", "subject", "number",
  "date", "nature_descr", "classification", "type"}]}``, every value a string (S²low passes the
  result through ``legacy_encode_array``), newest first. ``limit`` defaults to 100. With a date,
  a transaction is listed once per time it reached status ``s`` within
  ``[min_date 00:00, max_date 00:00]`` (the SQL joins the workflow rows of that status);
  ``date`` is the decision date.

A missing or non-numeric ``status_id`` reads as 0 (``getInt``), an unreadable date as no bound.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

if TYPE_CHECKING:
    from connectors.simulators.s2low import S2lowSimulator, Transaction

_API = "/modules/actes/api/"


def get_int(request: Request, name: str, default: int = 0) -> int:
    """PHP's ``intval`` of a GET parameter, as S²low's ``Recuperateur::getInt``."""
    raw = (request.query_params.get(name) or "").strip()
    sign = -1 if raw.startswith("-") else 1
    digits = raw.lstrip("+-")
    number = ""
    for char in digits:
        if not char.isdigit():
            break
        number += char
    return sign * int(number) if number else default


def get_date(request: Request, name: str) -> datetime | None:
    raw = (request.query_params.get(name) or "").strip()
    for pattern in ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(raw, pattern)
        except ValueError:
            continue
    return None


def listed(transactions: list[Transaction], status_id: int, min_date: datetime | None,
           max_date: datetime | None) -> list[Transaction]:
    """``getListByStatusAndAuthority`` before paging: last status ``status_id``; with a date bound,
    one row per workflow entry of that status within the bounds."""
    rows: list[Transaction] = []
    for tx in sorted(transactions, key=lambda t: t.id, reverse=True):
        if tx.status != status_id:
            continue
        if min_date is None and max_date is None:
            rows.append(tx)
            continue
        for entry in tx.history:
            when = datetime.fromisoformat(entry["date"])
            if entry["status"] == status_id and (min_date is None or when >= min_date) \
                    and (max_date is None or when <= max_date):
                rows.append(tx)
    return rows


def install_listing(app: FastAPI, sim: S2lowSimulator) -> None:
    from connectors.simulators.s2low import STATUS_NAMES, unauthorized
    from schemas.actes import naming

    def own(siren: str) -> list[Transaction]:
        mine = [tx for tx in sim.state.transactions.values() if tx.siren == siren]
        for tx in mine:
            sim.refresh(tx)
        return mine

    @app.get(_API + "actes_status.php")
    async def actes_status(request: Request) -> Response:
        sim.count("actes_status")
        if sim.authenticate(request) is None:
            return unauthorized()
        return JSONResponse({str(k): v for k, v in sorted(STATUS_NAMES.items())})

    @app.get(_API + "number_actes.php")
    async def number_actes(request: Request) -> Response:
        sim.count("number_actes")
        who = sim.authenticate(request)
        if who is None:
            return unauthorized()
        status_id = get_int(request, "status_id")
        count = sum(1 for tx in own(who[0]) if tx.status == status_id)
        return JSONResponse({"status_id": status_id, "authority_id": sim.authority_id(who[0]),
                             "nb_transactions": count})

    @app.get(_API + "list_actes.php")
    async def list_actes(request: Request) -> Response:
        sim.count("list_actes")
        who = sim.authenticate(request)
        if who is None:
            return unauthorized()
        status_id = get_int(request, "status_id")
        offset = max(0, get_int(request, "offset"))
        limit = max(0, get_int(request, "limit", 100))
        rows = listed(own(who[0]), status_id, get_date(request, "min_date"), get_date(request, "max_date"))

        def row(tx: Transaction) -> dict[str, Any]:
            return {"id": str(tx.id), "subject": tx.objet, "number": tx.numero, "date": tx.date_decision,
                    "nature_descr": naming.nature_info(tx.nature).label, "classification": tx.classification,
                    "type": str(tx.type)}

        return JSONResponse({
            "status_id": str(status_id), "authority_id": str(sim.authority_id(who[0])), "offset": str(offset),
            "limit": str(limit), "transactions": [row(tx) for tx in rows[offset:offset + limit]],
        })
