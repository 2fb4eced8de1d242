"""A 100 MB PES through the console's form: the API process's peak memory grows by a small part of
the file (measured in a fresh process by tests/console/upload_memory.py, which a form reading the
file whole fails: it grows by the file's size, as checked when it was written)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_100_mb_pes_through_the_form_is_never_held_in_memory() -> None:
    run = subprocess.run([sys.executable, "-m", "tests.console.upload_memory", "--mb", "100"], cwd=ROOT,
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    measured = json.loads(run.stdout.strip().splitlines()[-1])
    assert measured["status"] == 303 and "depot=1" in measured["location"], measured
    assert measured["file_mb"] >= 100
    assert measured["growth_mb"] < measured["file_mb"] / 4, measured
