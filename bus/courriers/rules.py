"""What each letter of the préfecture is, what reply it takes, and the délai the law sets
(docs/protocols.md §1.8-§1.11)."""

from __future__ import annotations

from datetime import date

from dateutil.relativedelta import relativedelta

from schemas.actes.messages import PREFECTURE_MESSAGE_LABELS

LABELS = PREFECTURE_MESSAGE_LABELS  # "3-1" -> "Demande de pièces complémentaires"
CODES = tuple(LABELS)
RECEIVED, ANSWERED, CLOSED = "received", "answered", "closed"
STATE_LABELS = {RECEIVED: "reçu", ANSWERED: "répondu", CLOSED: "clos"}

# message -> reply kind -> the reply's ACTES code (§1.8). A déféré (5-1) takes none through the TdT.
REPLIES: dict[str, dict[str, str]] = {
    "2-1": {"reponse": "2-2"},
    "3-1": {"pieces": "3-4", "refus": "3-3"},
    "4-1": {"reponse": "4-4", "refus": "4-3"},
    "5-1": {},
}
KINDS = ("pieces", "refus", "reponse")
KIND_LABELS = {"pieces": "Envoi des pièces complémentaires", "reponse": "Réponse", "refus": "Refus"}
# How the TdT sends each kind (S²low's type_envoie: 3 refus, 4 envoi).
SENDING = {"pieces": "envoi", "reponse": "envoi", "refus": "refus"}
# The replies the préfecture acknowledges: 3-5 after a 3-3 / 3-4, 4-5 after a 4-3 / 4-4. A 2-2
# gets no acknowledgement (there is no 2-3): it is closed once transmitted.
ACKNOWLEDGED = {"3-3", "3-4", "4-3", "4-4"}
TRANSMITTED = 3  # S²low's "Transmis", the end of a 2-2
# Reply ledger statuses (bus/courriers/ledger.py)
OPEN = ("intent", "retry", "submitted")


def metric(code: str) -> str:
    """The volume a message counts in the reports and the live counters: "prefecture_3-1"."""
    return f"prefecture_{code}"


METRICS = tuple(metric(code) for code in CODES)


def takes_reply(code: str) -> bool:
    return bool(REPLIES.get(code))


def due_date(code: str, sent_on: date | None) -> date | None:
    """The day the collectivité's silence on a 3-1 or a 4-1 becomes a refusal; None where the
    law sets no délai to the collectivité.

    The préfet has two months from the transmission to defer an acte to the tribunal administratif
    (CGCT art. L. 2131-6). A demande de pièces complémentaires (3-1), or a lettre d'observations
    asking to withdraw or change the acte (4-1, a recours gracieux), sent within those two months,
    keeps that délai open: it runs again from the reception of the pièces or from the collectivité's
    explicit or implicit refusal (CE, 13 janvier 1988, Mutuelle générale des personnels des
    collectivités locales, n° 68166; CE, 15 mai 2013, n° 357031). Two months of silence make an
    implicit refusal (loi n° 2000-321 du 12 avril 2000, art. 21, now art. L. 231-4 of the code des
    relations entre le public et l'administration). The due date is therefore the letter's date
    (DateCourrierPref, the earliest the collectivité can have received it) plus two calendar
    months: past it, the préfet's own two months to go to court have started again.

    A courrier simple (2-1) sets no délai, and after a déféré (5-1) the délais are the tribunal's
    (code de justice administrative), not an @ctes exchange's."""
    if code not in ("3-1", "4-1") or sent_on is None:
        return None
    return sent_on + relativedelta(months=2)
