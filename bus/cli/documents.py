"""Documents through the API (`deposit`, `status`), and messages read locally (`inspect`,
`pes-memory`)."""

from __future__ import annotations

import json
import mimetypes
import sys
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.table import Table

from bus.cli.common import (
    ApiKeyOpt,
    ApiUrl,
    DataDir,
    api_error,
    app,
    client_config,
    console,
    fail,
)

PANEL = "Documents"


@app.command(rich_help_panel=PANEL)
def deposit(
    flow: Annotated[str, typer.Option(help="Flow (actes)")],
    siren: Annotated[str, typer.Option(help="SIREN of the collectivité")],
    file: Annotated[Path, typer.Option(help="The document (acte PDF, PES_Aller XML…)")],
    meta: Annotated[Path | None, typer.Option(help="Metadata JSON file (optional for helios)")] = None,
    annex: Annotated[list[Path] | None, typer.Option(help="Annexe (repeatable)")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Idempotency-Key header")] = None,
    api_url: ApiUrl = None,
    key: ApiKeyOpt = None,
    data_dir: DataDir = None,
) -> None:
    """Deposit a document through the API; prints the created document as JSON."""
    url, api_key = client_config(api_url, key, siren, data_dir)
    headers = {"Authorization": f"Bearer {api_key}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    def part(path: Path) -> tuple[str, bytes, str]:
        return path.name, path.read_bytes(), mimetypes.guess_type(path.name)[0] or "application/octet-stream"

    files = [("document", part(file))] + [("annexes", part(a)) for a in annex or []]
    resp = httpx.post(f"{url}/api/v1/documents", headers=headers, timeout=60,
                      data={"flow": flow, "siren": siren, "metadata": meta.read_text(encoding="utf-8") if meta else "{}"},
                      files=files)
    if resp.status_code not in (200, 201):
        api_error(resp)
    console.print_json(data=resp.json())


@app.command(rich_help_panel=PANEL)
def status(
    document_id: Annotated[str, typer.Argument(help="Document id")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the document as JSON")] = False,
    watch: Annotated[bool, typer.Option(help="Follow until a terminal state")] = False,
    api_url: ApiUrl = None,
    key: ApiKeyOpt = None,
    data_dir: DataDir = None,
) -> None:
    """Show a document's state and timeline."""
    url, api_key = client_config(api_url, key, None, data_dir)
    while True:
        resp = httpx.get(f"{url}/api/v1/documents/{document_id}", headers={"Authorization": f"Bearer {api_key}"},
                         timeout=30)
        if resp.status_code != 200:
            api_error(resp)
        doc = resp.json()
        if not watch or doc["terminal"]:
            break
        time.sleep(0.5)
    if as_json:
        console.print_json(data=doc)
        return
    console.print(f"[bold]{doc['id']}[/bold]  flow={doc['flow']}  siren={doc['siren']}  state=[bold]{doc['state']}[/bold]")
    if doc.get("reason"):
        console.print(f"reason: {doc['reason']}")
    if doc.get("replies"):
        console.print("replies: " + ", ".join(f"{k}={v}" for k, v in doc["replies"].items()))
    table = Table("#", "time (UTC)", "event", "state", "detail")
    for entry in doc["timeline"]:
        detail = ", ".join(f"{k}={v}" for k, v in entry["detail"].items() if k != "stage")
        table.add_row(str(entry["seq"]), entry["at"][11:23], entry["event"], entry["state"], detail[:160])
    console.print(table)
    files = Table("file", "role", "size", "sha256")
    for f in doc["files"]:
        files.add_row(f["name"], f["role"], str(f["size"]), f["sha256"][:16] + "…")
    console.print(files)


@app.command(rich_help_panel=PANEL)
def inspect(
    file: Annotated[Path, typer.Argument(help="An ACTES message or archive, PES_Aller, PES_ACQUIT or SEDA message")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """Recognise a message and print its type and key fields."""
    from schemas.errors import SchemaError
    from schemas.inspect import inspect_message

    data = file.read_bytes()
    try:
        info = inspect_message(data)
    except SchemaError as exc:
        fail(f"{exc.code}: {exc.message}")
    if info.get("format") == "PES_Aller" and info.get("signatures"):
        from dataclasses import asdict

        from connectors.signature.xades import verify_pes

        info["signature_checks"] = [asdict(check) for check in verify_pes(data)]
    if as_json:
        print(json.dumps(info, ensure_ascii=False, indent=2, default=str))
        return
    table = Table("field", "value")
    for k, v in info.items():
        table.add_row(k, json.dumps(v, ensure_ascii=False, default=str) if not isinstance(v, str) else v)
    console.print(table)


@app.command("pes-memory", rich_help_panel=PANEL)
def pes_memory(
    file: Annotated[Path | None, typer.Argument(help="A PES_Aller; default: generate one of --size-mb")] = None,
    size_mb: Annotated[int, typer.Option(help="Size of the generated PES")] = 200,
) -> None:
    """Peak memory of validating, then of signing, a (big) PES_Aller, each in a fresh process."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        if file is None:
            from schemas.helios.generate import main as generate

            file = Path(tmp) / "PES_big.xml"
            with console.status(f"generating a {size_mb} MB PES_Aller…"):
                generate([str(file), "--size-mb", str(size_mb), "--siret", "21060023500017"])
        table = Table("step", "peak RSS", "detail")
        for step, module in (("validate (streaming XSD)", "schemas.helios.measure"),
                             ("sign (XAdES) + verify", "connectors.signature.measure")):
            with console.status(f"{step}…"):
                out = subprocess.run([sys.executable, "-m", module, str(file), "--json"], capture_output=True,
                                     text=True, check=False)
            if not out.stdout.strip():
                fail(f"{step} failed: {out.stderr[-500:]}")
            result = json.loads(out.stdout)
            detail = ", ".join(f"{k}={v}" for k, v in result.items() if k not in {"file", "peak_rss_kib"})
            table.add_row(step, f"{int(result['peak_rss_kib']) / 1024:.0f} MiB", detail)
        console.print(f"{file}: {file.stat().st_size / 1024 / 1024:.0f} MiB")
        console.print(table)
