"""Watched folders: business software that just drops files.

Layout, one folder per collectivité and flow: `<inbox>/<SIREN>/<flow>/`. A file there (with an
optional sidecar `<file>.meta.json` holding the metadata) is deposited once its size and mtime
have stayed the same for one scan, then moved to `done/`; a refused file goes to `rejected/` with
`<file>.error.json` saying why. Names starting with `.` or ending in `.part`/`.tmp` are ignored
while they are being written.

Never lost, never deposited twice: the deposit's Idempotency-Key is derived from the file's path
and SHA-256, and the file is moved only after the deposit is committed. After a crash between the
two, the next scan deposits it again, gets the same document back, and moves it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bus.deposits import Depositor, DepositRefused, Upload
from schemas.errors import SchemaError

log = logging.getLogger(__name__)

ACTOR = "watcher"
IGNORED_SUFFIXES = (".part", ".tmp", ".meta.json", ".error.json")
CHUNK = 1 << 16
MAX_SIDECAR = 1 << 20


@dataclass
class ScanReport:
    deposited: list[str] = field(default_factory=list)  # document ids
    rejected: list[str] = field(default_factory=list)  # file names


class FolderWatcher:
    def __init__(self, inbox: Path, depositor: Depositor) -> None:
        self.inbox = inbox
        self.depositor = depositor
        self._seen: dict[Path, tuple[int, float]] = {}  # size and mtime at the previous scan

    def candidates(self) -> list[tuple[str, str, Path]]:
        found = []
        # A symlinked folder is not followed: it could lead to another collectivité's inbox.
        for siren_dir in sorted(p for p in self.inbox.glob("*") if p.is_dir() and not p.is_symlink()):
            for flow_dir in sorted(p for p in siren_dir.glob("*") if p.is_dir() and not p.is_symlink()):
                for path in sorted(flow_dir.iterdir()):
                    if path.name.startswith(".") or path.name.endswith(IGNORED_SUFFIXES):
                        continue
                    if path.is_symlink() or path.is_file():  # a symlink is refused, not followed
                        found.append((siren_dir.name, flow_dir.name, path))
        return found

    def _stable(self, path: Path) -> bool:
        stat = path.lstat()
        now = (stat.st_size, stat.st_mtime)
        before = self._seen.get(path)
        self._seen[path] = now
        return before == now

    async def scan(self) -> ScanReport:
        report = ScanReport()
        for siren, flow, path in self.candidates():
            if not self._stable(path):
                continue
            try:
                doc_id = await self._deposit(siren, flow, path)
            except (DepositRefused, SchemaError) as exc:
                log.warning("refused %s: %s", path, exc)
                self._move(path, "rejected", {"code": exc.code, "message": exc.message})
                report.rejected.append(path.name)
                continue
            except Exception:
                log.exception("could not deposit %s; will try again", path)
                continue
            self._move(path, "done", None)
            report.deposited.append(doc_id)
        return report

    async def _deposit(self, siren: str, flow: str, path: Path) -> str:
        if path.is_symlink():
            raise DepositRefused(422, "symlink_refused", "Lien symbolique refusé / a symbolic link is not deposited")
        sidecar = path.with_name(path.name + ".meta.json")
        metadata: dict[str, Any] = {}
        if sidecar.is_symlink():
            raise DepositRefused(422, "symlink_refused", f"{sidecar.name}: lien symbolique refusé / symbolic link")
        if sidecar.exists():
            if sidecar.stat().st_size > MAX_SIDECAR:
                raise DepositRefused(413, "metadata_too_large", f"{sidecar.name}: more than {MAX_SIDECAR} bytes")
            try:
                metadata = json.loads(sidecar.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                raise DepositRefused(422, "invalid_metadata_json", f"{sidecar.name}: {type(exc).__name__}") from None
            if not isinstance(metadata, dict):
                raise DepositRefused(422, "invalid_metadata_json", f"{sidecar.name} must hold a JSON object")
        digest = await asyncio.to_thread(_sha256, path)
        key = f"watch:{siren}/{flow}/{path.name}:{digest}"
        result = await self.depositor.deposit(
            flow=flow, siren=siren, metadata=metadata, uploads=[Upload(path.name, "document", _chunks(path))],
            actor=ACTOR, idempotency_key=key,
        )
        return result.document_id

    def _move(self, path: Path, to: str, error: dict[str, str] | None) -> None:
        target_dir = path.parent / to
        target_dir.mkdir(exist_ok=True)
        target = target_dir / path.name
        if target.exists():  # same name dropped again later: keep both
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            target = target_dir / f"{path.stem}.{stamp}{path.suffix}"
        if error is not None:
            (target_dir / f"{target.name}.error.json").write_text(json.dumps(error, ensure_ascii=False, indent=2))
        sidecar = path.with_name(path.name + ".meta.json")
        if sidecar.exists():
            shutil.move(str(sidecar), str(target_dir / f"{target.name}.meta.json"))
        os.replace(path, target)
        self._seen.pop(path, None)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _chunks(path: Path):  # type: ignore[no-untyped-def]
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


async def watch_forever(watcher: FolderWatcher, interval: float) -> None:
    watcher.inbox.mkdir(parents=True, exist_ok=True)
    while True:
        report = await watcher.scan()
        if report.deposited or report.rejected:
            log.info("watched folders: %d deposited, %d rejected", len(report.deposited), len(report.rejected))
        await asyncio.sleep(interval)
