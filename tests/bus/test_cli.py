"""The command line: inspect real messages, administer collectivités and keys, verify journals."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from bus.cli import app
from tests.conftest import SAMPLES

runner = CliRunner()


def test_inspect_aracte_sample() -> None:
    result = runner.invoke(app, ["inspect", str(SAMPLES / "actes_ARActe__006-210600235-20180522-684-AI-1-2_5279__stela.xml"), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["format"] == "ARActe"
    assert info["id_acte"] == "006-210600235-20180522-684-AI"
    assert info["date_reception"] == "2018-05-28"
    assert info["numero_interne"] == "684"
    assert info["nature"] == 3


def test_inspect_pes_and_acquit_samples() -> None:
    pes = runner.invoke(app, ["inspect", str(SAMPLES / "pes_aller__PESALR2_25060187900027_190328_001__stela.xml"), "--json"])
    assert pes.exit_code == 0, pes.output
    info = json.loads(pes.output)
    assert info["format"] == "PES_Aller" and info["nom_fic"] == "STELA11" and info["id_coll"] == "75580064600099"
    assert info["signature_checks"][0]["valid"] is True
    assert info["signature_checks"][0]["signer_common_name"] == "THOMAS Celine"
    acquit = runner.invoke(app, ["inspect", str(SAMPLES / "pes_acquit_v2__ACQUIT_PESALR2_49101169800000_171227_2045__pastell.xml"), "--json"])
    assert acquit.exit_code == 0 and json.loads(acquit.output)["format"] == "PES_ACQUIT"


def test_inspect_refuses_unknown_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01 nothing we know")
    result = runner.invoke(app, ["inspect", str(junk), "--json"])
    assert result.exit_code == 1
    assert "unknown_format" in result.output


def test_collectivite_and_apikey_administration(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    bad = runner.invoke(app, ["collectivite", "add", "--siren", "123456789", "--name", "X", "--departement", "034", *data])
    assert bad.exit_code == 1 and "invalid SIREN" in bad.output
    ok = runner.invoke(app, ["collectivite", "add", "--siren", "491011698", "--name", "CC Test", "--departement", "034",
                             "--arrondissement", "3", "--nature", "44", *data])
    assert ok.exit_code == 0, ok.output
    listing = runner.invoke(app, ["collectivite", "list", *data])
    assert "491011698" in listing.output and "2019-03-01" in listing.output  # classification date
    assert "id_e" in listing.output and "│ 1 " in listing.output  # the Pastell API entité id
    key = runner.invoke(app, ["apikey", "create", "--siren", "491011698", "--role", "depositor", *data])
    assert key.exit_code == 0 and key.output.strip().startswith("dmb_")
    wrong_role = runner.invoke(app, ["apikey", "create", "--siren", "491011698", "--role", "boss", *data])
    assert wrong_role.exit_code == 1 and "unknown role" in wrong_role.output
