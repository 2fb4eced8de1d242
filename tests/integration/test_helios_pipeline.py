"""A PES_Aller through the real pipeline: validate → sign (XAdES) → S²low/Hélios → PES_ACQUIT → archive."""

from __future__ import annotations

import time
from pathlib import Path

from lxml import etree

from connectors.signature.xades import verify_pes
from schemas.helios.acquit import parse_acquit
from schemas.helios.generate import generate_pes_aller
from schemas.xml import validate
from tests.conftest import SAMPLES
from tests.integration.conftest import Bus

PES_SIREN = "755800646"  # the IdColl of the real sample is 75580064600099
SAMPLE = SAMPLES / "pes_aller__PESALR2_25060187900027_190328_001__stela.xml"


def unsigned_sample(nom_fic: str, encoding: str = "ISO-8859-1") -> bytes:
    """The real sample, its signatures removed, with another NomFic (unique per collectivité)."""
    tree = etree.fromstring(SAMPLE.read_bytes())
    for sig in tree.iter("{http://www.w3.org/2000/09/xmldsig#}Signature"):
        sig.getparent().remove(sig)
    tree.find("Enveloppe/Parametres/NomFic").set("V", nom_fic)
    return etree.tostring(tree, xml_declaration=True, encoding=encoding)


def deposit_pes(bus: Bus, data: bytes, *, signature: bool | None = True, siren: str = PES_SIREN,
                expect: int = 201) -> dict:  # type: ignore[type-arg]
    meta = "{}" if signature is None else f'{{"signature": {str(signature).lower()}}}'
    resp = bus.api.post("/api/v1/documents", headers={"Authorization": f"Bearer {bus.keys[siren]}"},
                        data={"flow": "helios", "siren": siren, "metadata": meta},
                        files={"document": ("PES.xml", data, "application/xml")})
    assert resp.status_code == expect, resp.text
    return resp.json()


def test_real_sample_is_signed_transmitted_acknowledged_and_archived(bus: Bus) -> None:
    doc = bus.wait(PES_SIREN, deposit_pes(bus, unsigned_sample("STELA_INT1"))["id"])
    assert doc["state"] == "archived", doc
    path = [e["state"] for e in doc["timeline"]]
    for state in ("signing", "signed", "transmitting", "transmitted", "acknowledged", "archiving"):
        assert state in path
    assert doc["replies"]["acquit"] == "accepted"
    assert doc["metadata"]["nom_fic"] == "STELA_INT1" and doc["metadata"]["id_coll"] == "75580064600099"
    roles = {f["role"]: f["name"] for f in doc["files"]}
    assert {"document", "signed_document", "pes_acquit", "seda_transfer"} <= set(roles)
    signed = bus.file(PES_SIREN, doc["id"], roles["signed_document"])
    validate("pes_aller", signed)
    # libxmlsec1 verifies each signature against the collectivité's own signing certificate.
    certificate = (bus.stack.data_dir / "certs" / PES_SIREN / "cert.pem").read_bytes()
    checks = verify_pes(signed, trusted_cert_pem=certificate)
    assert checks and all(c.valid for c in checks) and checks[0].claimed_role == "Ordonnateur"
    acquit = parse_acquit(bus.file(PES_SIREN, doc["id"], roles["pes_acquit"]))
    assert acquit.nom_fic == "STELA_INT1" and acquit.verdict == "accepted"


def test_mixed_acquit_is_flagged_and_fully_rejected_file_ends_rejected(bus: Bus, tmp_path: Path) -> None:
    mixed_file = generate_pes_aller(tmp_path / "mix.xml", siret="75580064600099", nom_fic="KOMIX_1",
                                    bordereaux=2, pieces_per_bordereau=2, pj_count=1, pj_size=200)
    mixed = bus.wait(PES_SIREN, deposit_pes(bus, mixed_file.read_bytes())["id"])
    assert mixed["replies"]["acquit"] == "partial", mixed
    assert mixed["replies"]["failed_bordereaux"]
    assert mixed["state"] == "archived"

    rejected_file = generate_pes_aller(tmp_path / "ko.xml", siret="75580064600099", nom_fic="KOALL_1",
                                       bordereaux=1, pieces_per_bordereau=1, pj_count=0, pj_size=0)
    rejected = bus.wait(PES_SIREN, deposit_pes(bus, rejected_file.read_bytes())["id"])
    assert rejected["state"] == "rejected", rejected
    assert rejected["replies"]["acquit"] == "rejected"
    assert any(f["role"] == "pes_acquit" for f in rejected["files"])


def test_hostile_and_invalid_pes_are_refused_at_the_door(bus: Bus, tmp_path: Path) -> None:
    before = bus.api.get("/api/v1/documents", headers={"Authorization": f"Bearer {bus.keys[PES_SIREN]}"}).json()
    cases = {
        "pes_wrong_idcoll": (unsigned_sample("WRONG_COLL"), "214400152"),
        "pes_not_iso_8859_1": (unsigned_sample("UTF8", encoding="UTF-8"), PES_SIREN),
        # 214400152 has no signature connector: its PES must arrive signed
        "pes_not_signed": (generate_pes_aller(tmp_path / "u.xml", siret="21440015200017", nom_fic="NOT_SIGNED",
                                              bordereaux=1, pieces_per_bordereau=1, pj_count=0,
                                              pj_size=0).read_bytes(), "214400152"),
        "pes_invalid_xml": (b'<?xml version="1.0" encoding="ISO-8859-1"?><n:PES_Aller', PES_SIREN),
        "pes_doctype_forbidden": (b'<?xml version="1.0" encoding="ISO-8859-1"?><!DOCTYPE x [<!ENTITY a "aaaa">'
                                  b'<!ENTITY b "&a;&a;&a;&a;">]><PES_Aller>&b;</PES_Aller>', PES_SIREN),
    }
    for code, (data, siren) in cases.items():
        resp = bus.api.post("/api/v1/documents", headers={"Authorization": f"Bearer {bus.keys[siren]}"},
                            data={"flow": "helios", "siren": siren, "metadata": "{}"},
                            files={"document": ("PES.xml", data, "application/xml")})
        assert 400 <= resp.status_code < 500 and resp.json()["error"]["code"] == code, (code, resp.text)
    after = bus.api.get("/api/v1/documents", headers={"Authorization": f"Bearer {bus.keys[PES_SIREN]}"}).json()
    assert len(after["documents"]) == len(before["documents"])


def test_duplicate_nomfic_and_broken_signature(bus: Bus) -> None:
    deposit_pes(bus, unsigned_sample("STELA_DUP"))
    again = deposit_pes(bus, unsigned_sample("STELA_DUP"), expect=409)
    assert again["error"]["code"] == "duplicate_nom_fic"
    # A file that arrives signed but was changed afterwards: verified, not re-signed, refused at the door.
    broken = SAMPLE.read_bytes().replace(b'<MtBordHT V="', b'<MtBordHT V="1', 1)
    refused = deposit_pes(bus, broken, signature=True, expect=422)
    assert refused["error"]["code"] == "pes_signature_invalid"
    assert "N10025" in refused["error"]["message"]  # the bordereau whose signature broke
    docs = bus.api.get("/api/v1/documents?flow=helios", headers={"Authorization": f"Bearer {bus.keys[PES_SIREN]}"})
    assert all(bus.get(PES_SIREN, d["id"])["metadata"]["nom_fic"] != "STELA11" for d in docs.json()["documents"])


def test_watched_folder_batch_survives_a_restart(bus: Bus, tmp_path: Path) -> None:
    inbox = bus.stack.data_dir / "inbox" / PES_SIREN / "helios"
    inbox.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(6):
        tmp = generate_pes_aller(tmp_path / f"b{i}.xml", siret="75580064600099", nom_fic=f"BATCH_{i}",
                                 bordereaux=1, pieces_per_bordereau=2, pj_count=1, pj_size=2000)
        (inbox / f"PES_{i}.xml.part").write_bytes(tmp.read_bytes())
        (inbox / f"PES_{i}.xml.part").rename(inbox / f"PES_{i}.xml")  # finance software: write, then rename
        names.append(f"PES_{i}.xml")
    bus.stack.start_watcher()
    deadline = time.monotonic() + 60
    while not any((inbox / "done").glob("*.xml")) and time.monotonic() < deadline:
        time.sleep(0.05)
    bus.stack.kill("watcher")  # in the middle of the batch
    bus.stack.start_watcher()
    while len(list((inbox / "done").glob("*.xml"))) < 6 and time.monotonic() < deadline:
        time.sleep(0.2)
    bus.stack.kill("watcher")
    assert sorted(p.name for p in (inbox / "done").glob("*.xml")) == names
    docs = bus.api.get("/api/v1/documents?flow=helios", headers={"Authorization": f"Bearer {bus.keys[PES_SIREN]}"}).json()
    batch = [d for d in docs["documents"] if d["id"]]
    nom_fics = [bus.get(PES_SIREN, d["id"])["metadata"]["nom_fic"] for d in batch]
    assert sorted(n for n in nom_fics if n.startswith("BATCH_")) == [f"BATCH_{i}" for i in range(6)]


def test_real_sample_arriving_signed_is_verified_and_sent_as_is(bus: Bus) -> None:
    original = SAMPLE.read_bytes()
    doc = bus.wait(PES_SIREN, deposit_pes(bus, original, signature=False)["id"])
    assert doc["state"] == "archived", doc
    assert doc["metadata"]["already_signed"] is True
    assert doc["metadata"]["signatures"][0]["signer"] == "THOMAS Celine"
    assert "signing" not in [e["state"] for e in doc["timeline"]]
    assert doc["replies"]["acquit"] == "accepted"


def test_pes_signed_through_the_parapheur(bus: Bus, tmp_path: Path) -> None:
    siren = "491011698"  # configured with the i-Parapheur simulator (type HELIOS, sous-type PES)
    pes = generate_pes_aller(tmp_path / "p.xml", siret="49101169800000", nom_fic="IPARAPH_PES_1",
                             bordereaux=2, pieces_per_bordereau=1, pj_count=1, pj_size=500)
    doc = bus.wait(siren, deposit_pes(bus, pes.read_bytes(), siren=siren, signature=True)["id"])
    assert doc["state"] == "archived", doc
    signed = next(f for f in doc["files"] if f["role"] == "signed_document")
    checks = verify_pes(bus.file(siren, doc["id"], signed["name"]))
    assert len(checks) == 2 and all(c.valid for c in checks)  # one XAdES per bordereau
