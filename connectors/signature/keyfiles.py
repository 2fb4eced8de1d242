"""Identity of key and certificate files, for the per-file caches of the signers."""

from __future__ import annotations

import os
from pathlib import Path


def file_version(path: Path | str) -> tuple[str, int, int]:
    """(absolute path, inode, mtime ns) of ``path``: a cache key that changes when the file is
    rewritten or a symlink (a mounted secret's ``..data``) is swapped. One ``stat``: resolving the
    path (``Path.resolve``, one ``lstat`` per component) cost ten times more on every signature."""
    stat = os.stat(path)
    return os.path.abspath(path), stat.st_ino, stat.st_mtime_ns
