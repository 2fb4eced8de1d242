"""Peak memory of signing one PES: ``python -m connectors.signature.measure FILE [--json]``.

Reads the file, signs it (XAdES per bordereau, a throw-away test certificate), verifies the
result, and prints the peak RSS of the process (input, tree and output included). Run it in a
fresh process for a fair figure; `dematbus pes-memory FILE` runs it next to the validation one.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from connectors.signature.certificates import make_test_certificate
from connectors.signature.xades import sign_pes, verify_pes


def measure(path: Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = make_test_certificate("Ordonnateur de mesure", "dematbus", Path(tmp))
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.monotonic()
        signed = sign_pes(path.read_bytes(), cert_path=cert, key_path=key)
        sign_seconds = time.monotonic() - start
        checks = verify_pes(signed)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"file": str(path), "size_bytes": path.stat().st_size, "signatures": len(checks),
            "valid": all(c.valid for c in checks), "sign_seconds": round(sign_seconds, 2),
            "baseline_rss_kib": baseline, "peak_rss_kib": peak}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connectors.signature.measure")
    parser.add_argument("file", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.file)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['file']}: {result['signatures']} signature(s), valid={result['valid']}, "
              f"signed in {result['sign_seconds']} s, peak RSS {int(result['peak_rss_kib']) / 1024:.0f} MiB")
    return 0 if result["valid"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
