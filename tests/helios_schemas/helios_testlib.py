"""Shared helpers of the HELIOS schemas tests (imported by name: this folder is on sys.path)."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
SIRET = "21060023500017"
SIREN = "210600235"
SAMPLE_SIREN = "755800646"  # IdColl 75580064600099 of the stela sample


def sample_path(prefix: str) -> Path:
    files = sorted(SAMPLES.glob(prefix + "*"))
    if not files:
        pytest.skip(f"sample {prefix} not available")
    return files[0]


def pes_sample() -> bytes:
    return sample_path("pes_aller__").read_bytes()


def acquit_sample() -> bytes:
    return sample_path("pes_acquit_v2__").read_bytes()
