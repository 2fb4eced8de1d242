from __future__ import annotations

from pathlib import Path

import pytest
from helios_testlib import SAMPLE_SIREN, SIREN, SIRET, sample_path
from pydantic import ValidationError

from schemas.deposit import DepositContext, DepositFile
from schemas.errors import MetadataError, SchemaError
from schemas.helios.deposit import check_deposit
from schemas.helios.generate import generate_pes_aller
from schemas.helios.metadata import HeliosMetadata


def _doc(path: Path) -> DepositFile:
    return DepositFile(name=path.name, role="document", media_type="application/xml",
                       size=path.stat().st_size, head=path.read_bytes()[:512])


@pytest.fixture
def pes(tmp_path: Path) -> Path:
    return generate_pes_aller(tmp_path / "pes.xml", siret=SIRET, nom_fic="PESDEP1", bordereaux=2,
                              pieces_per_bordereau=2, pj_count=1, pj_size=500)


def test_ok_and_signature_default(pes: Path) -> None:
    meta = check_deposit({}, _doc(pes), [], DepositContext(siren=SIREN, path=pes))
    assert meta["signature"] is False
    assert (meta["nom_fic"], meta["id_coll"], meta["id_post"], meta["cod_col"], meta["cod_bud"]) == (
        "PESDEP1", SIRET, "006111", "123", "01")
    assert meta["already_signed"] is False
    assert [b["id_bord"] for b in meta["bordereaux"]] == ["1", "2"]
    assert meta["pj_count"] == 1
    ctx = DepositContext(siren=SIREN, path=pes, options={"signature_default": True})
    assert check_deposit({}, _doc(pes), [], ctx)["signature"] is True
    assert check_deposit({"signature": False}, _doc(pes), [], ctx)["signature"] is False


def test_already_signed_sample() -> None:
    p = sample_path("pes_aller__")
    meta = check_deposit({"signature": True}, _doc(p), [], DepositContext(siren=SAMPLE_SIREN, path=p))
    assert meta["signature"] is True and meta["already_signed"] is True


def test_refusals(pes: Path) -> None:
    with pytest.raises(SchemaError) as exc:
        check_deposit({}, _doc(pes), [_doc(pes)], DepositContext(siren=SIREN, path=pes))
    assert exc.value.code == "helios_no_annexes"
    with pytest.raises(SchemaError) as exc:
        check_deposit({}, _doc(pes), [], DepositContext(siren="214400152", path=pes))
    assert exc.value.code == "pes_wrong_idcoll"
    with pytest.raises(MetadataError) as exc:
        check_deposit({"nature": 1}, _doc(pes), [], DepositContext(siren=SIREN, path=pes))
    assert exc.value.code == "invalid_metadata"
    with pytest.raises(MetadataError):
        check_deposit({"signature": "peut-être"}, _doc(pes), [], DepositContext(siren=SIREN, path=pes))
    bad = pes.with_name("bad.xml")
    bad.write_bytes(pes.read_bytes().replace(b"ISO-8859-1", b"UTF-8"))
    with pytest.raises(SchemaError) as exc:
        check_deposit({}, _doc(bad), [], DepositContext(siren=SIREN, path=bad))
    assert exc.value.code == "pes_not_iso_8859_1"


def test_metadata_model() -> None:
    assert HeliosMetadata().signature is None
    assert HeliosMetadata(signature=True).signature is True
    with pytest.raises(ValidationError):
        HeliosMetadata.model_validate({"other": 1})
