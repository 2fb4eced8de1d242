"""Peak memory of `read_pes_aller` on one file: ``python -m schemas.helios.measure FILE [--json]``.

Prints the peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, KiB on Linux) measured once
the modules are imported and the XSD compiled (baseline), then after reading the file (peak),
their difference, the file size and the read time. Run it in a fresh process for a fair figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

from schemas.helios.pes import HeliosError, _pes_aller_schema, read_pes_aller


def _maxrss_kib() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss // 1024 if sys.platform == "darwin" else rss  # macOS reports bytes


def measure(path: Path) -> dict[str, object]:
    _pes_aller_schema()  # warm-up: libxml2 + XSD compilation are not the file's cost
    baseline = _maxrss_kib()
    t0 = time.monotonic()
    result: dict[str, object] = {"file": str(path), "size_bytes": path.stat().st_size}
    try:
        summary = read_pes_aller(path)
        result.update(ok=True, bordereaux=len(summary.bordereaux), pj_count=summary.pj_count,
                      nom_fic=summary.nom_fic)
    except HeliosError as exc:
        result.update(ok=False, error=exc.code, message=exc.message)
    peak = _maxrss_kib()
    result.update(seconds=round(time.monotonic() - t0, 2), baseline_rss_kib=baseline, peak_rss_kib=peak,
                  increase_kib=peak - baseline)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m schemas.helios.measure", description=__doc__.split("\n")[0])
    ap.add_argument("file", type=Path)
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = ap.parse_args(argv)
    r = measure(args.file)
    if args.json:
        print(json.dumps(r, ensure_ascii=False))
    else:
        mb = int(r["size_bytes"]) / 1024 / 1024
        print(f"{r['file']}: {mb:.1f} MiB, ok={r['ok']} {r.get('error', '')} in {r['seconds']} s")
        print(f"peak RSS {int(r['peak_rss_kib']) / 1024:.1f} MiB "
              f"(baseline {int(r['baseline_rss_kib']) / 1024:.1f} MiB, "
              f"increase {int(r['increase_kib']) / 1024:.1f} MiB)")
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
