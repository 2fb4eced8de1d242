"""Deposit rules of the RH flows that go through ACTES (decrees) or may (contracts).

Both reuse the ACTES rules for their acte part; the RH part (the agent) is checked here. The
nature is forced: an arrêté individuel is nature 3, a contract nature 4.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from schemas.actes.deposit import check_deposit as check_actes_deposit
from schemas.deposit import DepositContext, DepositFile
from schemas.errors import MetadataError
from schemas.rh.metadata import Agent, AgentContact

ACTE_INDIVIDUEL, CONTRAT = 3, 4


def _agent_part(model: type[BaseModel], metadata: dict[str, Any]) -> dict[str, Any]:
    try:
        agent = model.model_validate(metadata)
    except ValidationError as exc:
        field = ".".join(str(p) for p in exc.errors()[0].get("loc", ()))
        raise MetadataError(f"invalid_{field or 'agent'}",
                            f"Donnée agent invalide / invalid agent field: {field}") from None
    return agent.model_dump()


def _with_nature(metadata: dict[str, Any], nature: int, agent_fields: dict[str, Any],
                 document: DepositFile, annexes: list[DepositFile], context: DepositContext) -> dict[str, Any]:
    given = metadata.get("nature", nature)
    if given != nature:
        raise MetadataError("invalid_nature", f"Ce flux impose la nature {nature} / this flow's nature is {nature}")
    acte = {k: v for k, v in metadata.items() if k not in agent_fields}
    acte["nature"] = nature
    return {**check_actes_deposit(acte, document, annexes, context), **agent_fields}


def check_acte(metadata: dict[str, Any], document: DepositFile, annexes: list[DepositFile],
               context: DepositContext) -> dict[str, Any]:
    """An arrêté individuel: the ACTES metadata plus the agent's `matricule`; always signed."""
    agent = _agent_part(Agent, metadata)
    meta = _with_nature({**metadata, "signature": True}, ACTE_INDIVIDUEL, agent, document, annexes, context)
    return meta


def check_contrat(metadata: dict[str, Any], document: DepositFile, annexes: list[DepositFile],
                  context: DepositContext) -> dict[str, Any]:
    """A contract: the agent (matricule, name, e-mail and mobile for the one-time code) and the acte
    part (numéro, objet, date, classification) used by the archive and, when the collectivité
    transmits its contracts, by the préfecture."""
    agent = _agent_part(AgentContact, metadata)
    meta = _with_nature({**metadata, "signature": True}, CONTRAT, agent, document, annexes, context)
    return meta
