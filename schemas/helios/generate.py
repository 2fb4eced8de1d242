"""Write synthetic, XSD-valid PES_Aller files (ISO-8859-1), streaming, for tests and benchmarks.

The shape follows the real sample (stela PESALR2_25060187900027_190328_001): Enveloppe, EnTetePES,
one PES_DepenseAller (or PES_RecetteAller) with `bordereaux` Bordereau of `pieces_per_bordereau`
Piece (one line each, with a Tiers), then PES_PJ with `pj_count` PJ of `pj_size` raw bytes
(deterministic pseudo-random, base64 in 76-character lines, i.e. ~4/3 of `pj_size` on disk).
Text is written directly to the file: nothing of the size of the output is held in memory.

* `with_ids=True` puts an `Id` on every Bordereau (per-bordereau XAdES targets, docs/protocols.md §3.2); the root
  always has `Id="PES"` (whole-file signature target).
* Pieces reference the PJ (PJRef/IdUnique) round-robin when there are PJ.

CLI::

    python -m schemas.helios.generate OUT.xml --size-mb 200 --siret 21060023500017
    python -m schemas.helios.generate OUT.xml --bordereaux 3 --pieces 10 --pj 5 --pj-size 20000
"""

from __future__ import annotations

import argparse
import base64
import random
from datetime import date
from pathlib import Path
from typing import IO, Literal
from xml.sax.saxutils import quoteattr

from schemas.helios.ns import PES_ALLER_NS

__all__ = ["generate_pes_aller", "main", "pj_count_for_size"]

_PDF_HEAD = b"%PDF-1.4\n% dematbus synthetic PJ\n"


def _v(out: IO[str], tag: str, value: str | int, indent: str = "") -> None:
    out.write(f"{indent}<{tag} V={quoteattr(str(value))}/>\n")


def _pj_id(siret: str, domain: str, i: int) -> str:
    return f"{siret}{domain.upper()}{i:08d}"[:50]


def _piece_depense(out: IO[str], idx: int, amount: str, pj_ref: str | None) -> None:
    out.write("<Piece><BlocPiece><InfoPce>\n")
    _v(out, "IdPce", idx)
    _v(out, "TypPce", "01")
    _v(out, "NatPce", "01")
    _v(out, "Obj", f"Pièce synthétique n°{idx} - réseau d'eau")
    if pj_ref:
        out.write("<PJRef>")
        _v(out, "Support", "01")
        _v(out, "IdUnique", pj_ref)
        _v(out, "NomPJ", f"{pj_ref}.pdf")
        out.write("</PJRef>\n")
    out.write("</InfoPce></BlocPiece>\n<LigneDePiece><BlocLignePiece><InfoLignePce>\n")
    _v(out, "IdLigne", 1)
    _v(out, "Nature", "60611")
    _v(out, "Fonction", "020")
    _v(out, "LibVir1", f"FACTURE {idx}")
    _v(out, "ModRegl", "03")
    _v(out, "TVAIntraCom", "0")
    _v(out, "MtHT", amount)
    out.write("</InfoLignePce></BlocLignePiece>\n<Tiers><InfoTiers>\n")
    _v(out, "IdTiers", "30566191000029")
    _v(out, "NatIdTiers", "01")
    _v(out, "RefTiers", idx % 100000)
    _v(out, "CatTiers", "50")
    _v(out, "NatJur", "03")
    _v(out, "Nom", "FOURNISSEUR ÉTÉ")
    out.write("</InfoTiers><Adresse>\n")
    _v(out, "TypAdr", "1")
    _v(out, "Adr2", "1 RUE DE LA PAIX")
    _v(out, "CP", "06000")
    _v(out, "Ville", "NICE")
    _v(out, "CodRes", "0")
    out.write("</Adresse></Tiers></LigneDePiece></Piece>\n")


def _piece_recette(out: IO[str], idx: int, amount: str, pj_ref: str | None) -> None:
    out.write("<Piece><BlocPiece>\n")
    _v(out, "IdPce", idx)
    _v(out, "TypPce", "01")
    _v(out, "NatPce", "01")
    _v(out, "ObjPce", f"Titre synthétique n°{idx} - redevance")
    if pj_ref:
        out.write("<PJRef>")
        _v(out, "Support", "01")
        _v(out, "IdUnique", pj_ref)
        _v(out, "NomPJ", f"{pj_ref}.pdf")
        out.write("</PJRef>\n")
    out.write("</BlocPiece>\n<LigneDePiece><BlocLignePiece><InfoLignePiece>\n")
    _v(out, "IdLigne", 1)
    _v(out, "CodProdLoc", "A1")
    _v(out, "Nature", "70611")
    _v(out, "Majo", "0")
    _v(out, "TvaIntraCom", "0")
    _v(out, "MtHT", amount)
    out.write("</InfoLignePiece></BlocLignePiece>\n<Tiers><InfoTiers>\n")
    _v(out, "CatTiers", "01")
    _v(out, "NatJur", "01")
    _v(out, "TypTiers", "01")
    _v(out, "Nom", "REDEVABLE ÉTÉ")
    out.write("</InfoTiers><Adresse>\n")
    _v(out, "TypAdr", "1")
    _v(out, "Adr2", "2 AVENUE DES FLEURS")
    _v(out, "CP", "06000")
    _v(out, "Ville", "NICE")
    _v(out, "CodRes", "0")
    out.write("</Adresse></Tiers></LigneDePiece></Piece>\n")


def generate_pes_aller(
    path: Path,
    *,
    siret: str,
    nom_fic: str,
    bordereaux: int,
    pieces_per_bordereau: int,
    pj_count: int,
    pj_size: int,
    domain: Literal["depense", "recette"] = "depense",
    with_ids: bool = True,
    exercice: int = 2024,
    day: date = date(2024, 3, 15),
    id_post: str = "006111",
    cod_col: str = "123",
    cod_bud: str = "01",
    seed: int = 1,
) -> Path:
    """Write a valid PES_Aller to `path` and return `path` (see the module docstring)."""
    if domain not in ("depense", "recette"):
        raise ValueError("domain must be 'depense' or 'recette'")
    if not (siret.isdigit() and len(siret) == 14):
        raise ValueError("siret must be 14 digits")
    path = Path(path)
    rng = random.Random(seed)
    pj_ids = [_pj_id(siret, domain, i + 1) for i in range(pj_count)]
    piece_fn = _piece_depense if domain == "depense" else _piece_recette
    section = "PES_DepenseAller" if domain == "depense" else "PES_RecetteAller"
    entete = "EnTeteDepense" if domain == "depense" else "EnTeteRecette"
    mt_tag = "MtBordHT" if domain == "depense" else "MtBordHt"
    with path.open("w", encoding="iso-8859-1", errors="xmlcharrefreplace", newline="\n") as out:
        out.write('<?xml version="1.0" encoding="ISO-8859-1"?>\n')
        out.write(f'<n:PES_Aller xmlns:n="{PES_ALLER_NS}" Id="PES">\n<Enveloppe><Parametres>\n')
        _v(out, "Version", "2")
        _v(out, "TypFic", "PESALR2")
        _v(out, "NomFic", nom_fic)
        out.write("</Parametres><Emetteur>\n")
        _v(out, "Sigle", "dematbus")
        _v(out, "Adresse", "générateur de test")
        out.write("</Emetteur><Recepteur>\n")
        _v(out, "Sigle", "HELIOS")
        out.write("</Recepteur></Enveloppe>\n<EnTetePES>\n")
        _v(out, "DteStr", day.isoformat())
        _v(out, "IdPost", id_post)
        _v(out, "IdColl", siret)
        _v(out, "CodCol", cod_col)
        _v(out, "CodBud", cod_bud)
        _v(out, "LibelleColBud", "Budget principal de la commune")
        out.write("</EnTetePES>\n")
        if bordereaux > 0:
            out.write(f"<{section}><{entete}>\n")
            _v(out, "IdVer", "2")
            _v(out, "InfoDematerialisee", "0")
            out.write(f"</{entete}>\n")
            piece_no = 0
            cumul = 0
            for b in range(1, bordereaux + 1):
                amounts = [100_00 + (piece_no + i) % 9_000 for i in range(pieces_per_bordereau)]
                total = sum(amounts)
                cumul += total
                out.write(f'<Bordereau Id="BORD{b}">\n' if with_ids else "<Bordereau>\n")
                out.write("<BlocBordereau>\n")
                _v(out, "Exer", exercice)
                _v(out, "IdBord", b)
                _v(out, "DteBordEm", day.isoformat())
                _v(out, "TypBord", "01")
                _v(out, "NbrPce", pieces_per_bordereau)
                _v(out, "MtCumulAnnuel", f"{cumul / 100:.2f}")
                _v(out, mt_tag, f"{total / 100:.2f}")
                out.write("</BlocBordereau>\n")
                for cents in amounts:
                    piece_no += 1
                    ref = pj_ids[(piece_no - 1) % len(pj_ids)] if pj_ids else None
                    piece_fn(out, piece_no, f"{cents / 100:.2f}", ref)
                out.write("</Bordereau>\n")
            out.write(f"</{section}>\n")
        if pj_count > 0:
            out.write("<PES_PJ><EnTetePES_PJ>")
            _v(out, "IdVer", "1")
            out.write("</EnTetePES_PJ>\n")
            for i, uid in enumerate(pj_ids):
                raw = _PDF_HEAD + rng.randbytes(max(0, pj_size - len(_PDF_HEAD)))
                out.write('<PJ><Contenu><Fichier MIMEType="application/pdf">')
                out.write(base64.encodebytes(raw).decode("ascii"))
                out.write("</Fichier></Contenu>\n")
                _v(out, "IdUnique", uid)
                _v(out, "NomPJ", f"{uid}.pdf")
                _v(out, "TypePJ", "003")
                _v(out, "Description", f"Facture n°{i + 1}")
                out.write("</PJ>\n")
            out.write("</PES_PJ>\n")
        out.write("</n:PES_Aller>\n")
    return path


def pj_count_for_size(size_bytes: int, pj_size: int) -> int:
    """How many PJ of `pj_size` raw bytes make a file of about `size_bytes`."""
    per_pj = (pj_size + 2) // 3 * 4 * 77 // 76 + 250  # base64 + newlines + PJ markup
    return max(1, size_bytes // per_pj)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m schemas.helios.generate", description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--siret", default="21060023500017")
    ap.add_argument("--nom-fic", default=None, help="NomFic (default: the file name)")
    ap.add_argument("--size-mb", type=float, default=None, help="target size: sets --pj from --pj-size")
    ap.add_argument("--bordereaux", type=int, default=2)
    ap.add_argument("--pieces", type=int, default=5, help="pieces per bordereau")
    ap.add_argument("--pj", type=int, default=2)
    ap.add_argument("--pj-size", type=int, default=45_000, help="raw bytes per PJ (~60 KB base64)")
    ap.add_argument("--domain", choices=("depense", "recette"), default="depense")
    ap.add_argument("--no-ids", action="store_true", help="no Id on the Bordereau elements")
    args = ap.parse_args(argv)
    pj = args.pj
    if args.size_mb is not None:
        pj = pj_count_for_size(int(args.size_mb * 1024 * 1024), args.pj_size)
    path = generate_pes_aller(
        args.out, siret=args.siret, nom_fic=args.nom_fic or args.out.name, bordereaux=args.bordereaux,
        pieces_per_bordereau=args.pieces, pj_count=pj, pj_size=args.pj_size, domain=args.domain,
        with_ids=not args.no_ids,
    )
    print(f"{path}: {path.stat().st_size} bytes, {args.bordereaux} bordereaux, {pj} PJ")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
