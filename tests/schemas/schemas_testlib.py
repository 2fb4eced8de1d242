"""Shared constants for the schemas tests (imported by name: tests/schemas is on sys.path)."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def sample(prefix: str) -> bytes:
    files = sorted(SAMPLES.glob(prefix + "*"))
    if not files:
        pytest.skip(f"sample {prefix} not available")
    return files[0].read_bytes()
