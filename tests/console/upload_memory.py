"""How much memory a big PES deposited through the console's form costs the API process.

    python -m tests.console.upload_memory --mb 100

Builds a valid PES_Aller of about that size (schemas.helios.generate), logs in as a depositor and
posts the « Fichier PES » form to the API app in this process (httpx streams the file from disk),
then prints, as JSON, the resident memory before the request and its peak during it (VmHWM, reset
just before through /proc/self/clear_refs). A form holding the file in memory would grow the peak
by the file's size at least; tests/console/test_console_upload_memory.py asserts it grows by much
less.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bus.collectivites import add_collectivite, simulator_connectors
from bus.config import Settings
from bus.store.apikeys import create_key
from bus.store.db import Store
from connectors.inbound.api import create_app
from schemas.helios.generate import generate_pes_aller

SIREN, SIRET = "755800646", "75580064600099"
PJ_BYTES = 1 << 20


def _status_kb(field: str) -> int:
    found = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    assert found, field
    return int(found.group(1))


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := the current RSS


async def _post_pes(client: httpx.AsyncClient, path: Path) -> httpx.Response:
    form = (await client.get(f"/console/deposer/{SIREN}/helios")).text
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))
    with path.open("rb") as pes:
        return await client.post(f"/console/deposer/{SIREN}/helios",
                                 data={**hidden, "signature": "on", "action": "deposer"},
                                 files={"document": (path.name, pes, "application/xml")})


async def measure(mb: int, work: Path) -> dict[str, Any]:
    settings = Settings(data_dir=work / "var")
    store = Store(settings.db_url)
    await store.migrate()
    async with store.transaction() as session:
        await add_collectivite(session, siren=SIREN, name="Collectivité PES", departement="075", arrondissement="1",
                               connectors=simulator_connectors(SIREN, "iparapheur"))
        key = await create_key(session, [SIREN], ["depositor"], name="Secrétariat")
    small = generate_pes_aller(work / "small.xml", siret=SIRET, nom_fic="WARM_UP", bordereaux=1,
                               pieces_per_bordereau=1, pj_count=1, pj_size=1024)
    big = generate_pes_aller(work / "big.xml", siret=SIRET, nom_fic="BIG_FORM", bordereaux=1,
                             pieces_per_bordereau=1, pj_count=max(1, mb * 3 // 4), pj_size=PJ_BYTES)
    app = create_app(settings, store)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console",
                                     timeout=600) as client:
            await client.post("/console/login", data={"key": key, "next": ""})
            warm = await _post_pes(client, small)  # schemas loaded, caches filled
            assert warm.status_code == 303, warm.text[-2000:]
            rss_before = _status_kb("VmRSS")
            _reset_peak()
            started = time.monotonic()
            answer = await _post_pes(client, big)
            seconds = time.monotonic() - started
            peak = _status_kb("VmHWM")
    finally:
        await store.close()
    return {"file_mb": round(big.stat().st_size / 2**20, 1), "status": answer.status_code,
            "location": answer.headers.get("location", ""), "rss_before_mb": round(rss_before / 1024, 1),
            "peak_mb": round(peak / 1024, 1), "growth_mb": round((peak - rss_before) / 1024, 1),
            "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=100, help="size of the PES, in MB (about)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dematbus-upload-") as work:
        print(json.dumps(asyncio.run(measure(args.mb, Path(work)))))


if __name__ == "__main__":
    main()
