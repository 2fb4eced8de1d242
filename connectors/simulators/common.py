"""Small helpers shared by the simulators: Basic auth parsing and JSON state snapshots."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Request


def basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        login, sep, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (login, password) if sep else None


def encode_json_state(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"__b64__": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        return {str(k): encode_json_state(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_json_state(v) for v in value]
    return value


def decode_json_state(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__b64__"}:
            return base64.b64decode(value["__b64__"])
        return {k: decode_json_state(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_json_state(v) for v in value]
    return value


def rng_state_from_json(state: Any) -> Any:
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


def write_json_atomically(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class SnapshotWriter:
    """Coalesces a simulator's state snapshots: at most one write per `interval` seconds, and the
    last change always lands. Rewriting the whole JSON state on every request made a busy
    simulator spend most of its time serialising; a crash loses at most `interval` seconds."""

    def __init__(self, write: Callable[[], None], interval: float = 0.5) -> None:
        self._write = write
        self.interval = interval
        self._pending: asyncio.TimerHandle | None = None

    def request(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the server's loop (start-up, tests): write now
            self._write()
            return
        if self._pending is None:
            self._pending = loop.call_later(self.interval, self.flush)

    def flush(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self._write()
