from __future__ import annotations

import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from helios_testlib import SIREN, SIRET

from schemas.helios.generate import generate_pes_aller, main, pj_count_for_size
from schemas.helios.pes import read_pes_aller, summarise_pes_aller
from schemas.xml import parse_xml, validate

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("domain", ["depense", "recette"])
@pytest.mark.parametrize("with_ids", [True, False])
def test_generated_validates(tmp_path: Path, domain: str, with_ids: bool) -> None:
    p = generate_pes_aller(
        tmp_path / "g.xml", siret=SIRET, nom_fic="PESGEN1", bordereaux=3, pieces_per_bordereau=4,
        pj_count=5, pj_size=3000, domain=domain, with_ids=with_ids,
    )
    data = p.read_bytes()
    assert data.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>')
    assert "Pièce".encode("latin-1") in data or "Titre synthétique".encode("latin-1") in data
    validate("pes_aller", parse_xml(data, max_bytes=10**8))  # the whole-tree validator agrees
    s = read_pes_aller(p)
    assert s.nom_fic == "PESGEN1" and s.id_coll == SIRET and s.siren == SIREN
    assert [b.domain for b in s.bordereaux] == [domain] * 3
    assert [b.id_bord for b in s.bordereaux] == ["1", "2", "3"]
    assert [b.id for b in s.bordereaux] == (["BORD1", "BORD2", "BORD3"] if with_ids else [None] * 3)
    assert all(b.pieces == 4 and b.exercice == "2024" for b in s.bordereaux)
    assert s.bordereaux[0].montant_ht == "400.06"  # 100.00 + 100.01 + 100.02 + 100.03
    assert s.pj_count == 5 and len(set(s.pj_ids)) == 5
    assert s.root_id == "PES" and not s.signed


def test_montant_from_lines_when_no_mtbordht(tmp_path: Path) -> None:
    p = generate_pes_aller(tmp_path / "g.xml", siret=SIRET, nom_fic="X", bordereaux=1,
                           pieces_per_bordereau=3, pj_count=0, pj_size=0)
    data = p.read_bytes()
    start = data.index(b"<MtBordHT")
    data = data[:start] + data[data.index(b"/>", start) + 3:]
    s = summarise_pes_aller(data)  # MtBordHT is mandatory in the XSD: lenient read only
    assert Decimal(s.bordereaux[0].montant_ht) == Decimal("300.03")


def test_pj_only_and_bordereau_only(tmp_path: Path) -> None:
    pj_only = generate_pes_aller(tmp_path / "a.xml", siret=SIRET, nom_fic="A", bordereaux=0,
                                 pieces_per_bordereau=0, pj_count=2, pj_size=100)
    assert read_pes_aller(pj_only).pj_count == 2
    bord_only = generate_pes_aller(tmp_path / "b.xml", siret=SIRET, nom_fic="B", bordereaux=1,
                                   pieces_per_bordereau=1, pj_count=0, pj_size=0)
    assert len(read_pes_aller(bord_only).bordereaux) == 1


def test_cli(tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli.xml"
    assert main([str(out), "--size-mb", "1", "--siret", SIRET]) == 0
    size = out.stat().st_size
    assert 0.8 * 1024 * 1024 < size < 1.2 * 1024 * 1024
    s = read_pes_aller(out)
    assert s.nom_fic == "cli.xml" and s.pj_count == pj_count_for_size(1024 * 1024, 45_000)


def test_streaming_memory(tmp_path: Path) -> None:
    """A ~30 MB PES is read with a peak-RSS increase far below its size (fresh subprocess)."""
    t0 = time.monotonic()
    p = generate_pes_aller(tmp_path / "big.xml", siret=SIRET, nom_fic="BIG", bordereaux=2,
                           pieces_per_bordereau=50, pj_count=pj_count_for_size(30 * 1024 * 1024, 45_000),
                           pj_size=45_000)
    size = p.stat().st_size
    assert size > 28 * 1024 * 1024
    proc = subprocess.run(
        [sys.executable, "-m", "schemas.helios.measure", str(p), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    r = json.loads(proc.stdout)
    assert r["ok"] is True and r["pj_count"] > 400 and r["bordereaux"] == 2
    increase = r["increase_kib"] * 1024
    assert increase < size * 0.15, f"peak RSS grew by {increase} bytes for a {size}-byte file"
    assert time.monotonic() - t0 < 20
