"""Which Kafka partitions each worker process holds, written down at every rebalance.

A worker writes `<data_dir>/workers/worker-<pid>.json` each time the consumer group hands it a new
assignment; operators (and the scale-out test) read them to see the partitions move when a worker
joins or dies. Files of dead workers stay behind: readers keep only live pids.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def _dir(data_dir: Path) -> Path:
    return Path(data_dir) / "workers"


def record_assignment(data_dir: Path, assigned: Iterable[Any], generation: int = 0) -> None:
    partitions: dict[str, list[int]] = defaultdict(list)
    for tp in assigned:
        partitions[tp.topic].append(tp.partition)
    folder = _dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"worker-{os.getpid()}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "at": time.time(), "generation": generation,
                               "partitions": {t: sorted(p) for t, p in sorted(partitions.items())}}))
    tmp.replace(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_assignments(data_dir: Path) -> dict[int, dict[str, list[int]]]:
    """pid → {topic: partitions} for every live worker that has recorded an assignment."""
    result = {}
    for path in sorted(_dir(data_dir).glob("worker-*.json")):
        data = json.loads(path.read_text())
        if _alive(data["pid"]):
            result[data["pid"]] = data["partitions"]
    return result
