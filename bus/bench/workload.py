"""The documents a benchmark deposits: one small generator per flow, real files each time.

Each collectivité of the bench signs (PAdES for ACTES, XAdES for PES) with its own certificate,
so the run pays for real signatures and real XSD validation.
"""

from __future__ import annotations

import json
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from connectors.signature.pdf import make_pdf
from schemas.helios.generate import generate_pes_aller
from schemas.siren import luhn_ok


@dataclass(frozen=True)
class BenchDocument:
    flow: str
    siren: str
    metadata: dict[str, object]
    files: list[tuple[str, tuple[str, bytes, str]]]  # httpx multipart parts

    @property
    def form(self) -> dict[str, str]:
        return {"flow": self.flow, "siren": self.siren, "metadata": json.dumps(self.metadata)}


def bench_sirens(count: int) -> list[str]:
    """`count` valid SIRENs (Luhn), spread over Kafka partitions by their key."""
    sirens, base = [], 219_000_000
    while len(sirens) < count:
        base += 1
        candidate = f"{base:09d}"
        if luhn_ok(candidate):
            sirens.append(candidate)
    return sirens


def _acte(siren: str, n: int, run: str) -> BenchDocument:
    numero = f"B{run}{n:07d}"
    meta = {"nature": 1, "numero_interne": numero, "date_decision": date.today().isoformat(),
            "objet": f"Délibération de mesure {n}", "classification": "1.1", "signature": True}
    pdf = make_pdf(f"Délibération {numero}", ["mesure"])
    return BenchDocument("actes", siren, meta, [("document", ("deliberation.pdf", pdf, "application/pdf"))])


def _pes(siren: str, n: int, run: str) -> BenchDocument:
    with tempfile.TemporaryDirectory(prefix="dematbus-bench-pes-") as tmp:
        path = generate_pes_aller(Path(tmp) / "pes.xml", siret=f"{siren}00012", nom_fic=f"B{run}{n:07d}",
                                  bordereaux=1, pieces_per_bordereau=2, pj_count=0, pj_size=0, seed=n)
        data = path.read_bytes()
    return BenchDocument("helios", siren, {"signature": True}, [("document", ("PES.xml", data, "application/xml"))])


def _arrete(siren: str, n: int, run: str) -> BenchDocument:
    """An RH arrêté individuel (flow rh-acte): parapheur signature, ACTES nature 3, archive."""
    numero = f"R{run}{n:07d}"
    meta = {"numero_interne": numero, "date_decision": date.today().isoformat(), "classification": "4.1",
            "objet": f"Arrêté de nomination {n}", "matricule": f"M{n:06d}"}
    pdf = make_pdf(f"Arrêté {numero}", ["mesure"])
    return BenchDocument("rh-acte", siren, meta, [("document", ("arrete.pdf", pdf, "application/pdf"))])


GENERATORS: dict[str, Callable[[str, int, str], BenchDocument]] = {"actes": _acte, "helios": _pes, "rh": _arrete}


def parse_mix(text: str) -> dict[str, float]:
    """`actes=0.5,helios=0.3` → shares summing to 1 over the flows the bench knows."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, share = part.partition("=")
        if name not in GENERATORS:
            raise ValueError(f"unknown flow {name!r} in the mix; known: {', '.join(sorted(GENERATORS))}")
        mix[name] = float(share or 1)
    total = sum(mix.values())
    if not mix or total <= 0:
        raise ValueError("the mix needs at least one flow with a positive share")
    return {name: share / total for name, share in mix.items()}


def workload(docs: int, mix: dict[str, float], sirens: list[str], seed: int = 7) -> list[BenchDocument]:
    """`docs` documents in a shuffled order, flows in the proportions of `mix`; their business keys
    (numéro, NomFic) carry a token of the run, so runs can share one database."""
    run = "".join(random.SystemRandom().choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(4))
    counts = {name: round(docs * share) for name, share in mix.items()}
    first = next(iter(counts))
    counts[first] += docs - sum(counts.values())
    flows = [name for name, count in counts.items() for _ in range(count)]
    random.Random(seed).shuffle(flows)
    return [GENERATORS[flow](sirens[i % len(sirens)], i, run) for i, flow in enumerate(flows)]
