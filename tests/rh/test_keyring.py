"""RH files are sealed at rest: AES-GCM, one key per collectivité, keys outside the database."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from bus.blobs import BlobStore
from bus.keyring import KeyUnavailable

PDF = b"%PDF-1.7 bulletin de paie de Camille Martin"


def test_sealed_blob_is_not_plaintext_and_reads_back(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs", tmp_path / "keys")
    ref = blobs.put(PDF, seal_for="214400152")
    on_disk = blobs.path(ref.sha256).read_bytes()
    assert b"Camille" not in on_disk and b"%PDF" not in on_disk
    assert ref.size == len(PDF)
    assert blobs.get(ref.sha256) == PDF
    assert b"".join(blobs.iter_chunks(ref.sha256, chunk_size=7)) == PDF
    key_file = tmp_path / "keys" / "214400152.key"
    assert len(key_file.read_bytes()) == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_one_key_per_collectivite(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs", tmp_path / "keys")
    a = blobs.path(blobs.put(PDF, seal_for="214400152").sha256).read_bytes()
    b = blobs.path(blobs.put(PDF, seal_for="210600235").sha256).read_bytes()
    assert (tmp_path / "keys" / "214400152.key").read_bytes() != (tmp_path / "keys" / "210600235.key").read_bytes()
    # A blob relabelled with another collectivité's SIREN does not open with that key.
    forged = a[:10] + b"210600235" + a[19:]
    with pytest.raises(InvalidTag):
        blobs.keyring.open(forged)
    assert blobs.keyring.open(b) == PDF


def test_another_process_reads_with_the_key_file_and_fails_without(tmp_path: Path) -> None:
    ref = BlobStore(tmp_path / "blobs", tmp_path / "keys").put(PDF, seal_for="214400152")
    assert BlobStore(tmp_path / "blobs", tmp_path / "keys").get(ref.sha256) == PDF
    with pytest.raises(KeyUnavailable):
        BlobStore(tmp_path / "blobs", tmp_path / "elsewhere").get(ref.sha256)


def test_plain_blobs_are_untouched(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs", tmp_path / "keys")
    ref = blobs.put(PDF)
    assert blobs.path(ref.sha256).read_bytes() == PDF == blobs.get(ref.sha256)
    assert not (tmp_path / "keys").exists()
