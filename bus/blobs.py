"""Content-addressed blob store on the filesystem (docs/invariants.md §3: Kafka carries references).

A blob lives at `<root>/<aa>/<bb>/<sha256>`. Writes stream to a temporary file in the same
directory tree and are renamed into place, so a crash never leaves a half-written blob under its
final name. Reads verify the SHA-256.

Blobs of encrypted flows are stored sealed (AES-GCM, `bus.keyring`): `put(..., seal_for=siren)`;
the SHA-256 is that of the stored (sealed) bytes, and reads open them transparently.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bus.keyring import MAGIC, KeyRing, is_sealed


class BlobCorrupted(Exception):
    pass


class BlobTooLarge(Exception):
    pass


@dataclass(frozen=True)
class BlobRef:
    sha256: str
    size: int


class BlobStore:
    def __init__(self, root: Path, keys_dir: Path | None = None) -> None:
        self.root = Path(root)
        self.keyring = KeyRing(keys_dir or self.root.parent / "keys")
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put_stream(self, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> BlobRef:
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise BlobTooLarge(f"more than {max_bytes} bytes")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            final = self.path(sha)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            return BlobRef(sha, size)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put(self, data: bytes, *, seal_for: str | None = None) -> BlobRef:
        if seal_for is None:
            return self.put_stream([data])
        ref = self.put_stream([self.keyring.seal(seal_for, data)])
        return BlobRef(ref.sha256, len(data))  # the size the reader gets back

    def put_sealed_stream(self, chunks: Iterable[bytes], seal_for: str, *, max_bytes: int | None = None) -> BlobRef:
        """Encrypted flows hold small files (payslips, decrees): sealed in memory, in one piece."""
        data = bytearray()
        for chunk in chunks:
            data.extend(chunk)
            if max_bytes is not None and len(data) > max_bytes:
                raise BlobTooLarge(f"more than {max_bytes} bytes")
        return self.put(bytes(data), seal_for=seal_for)

    def read_stored(self, sha256: str) -> bytes:
        """The bytes as they lie on disk (sealed blobs stay sealed)."""
        data = self.path(sha256).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise BlobCorrupted(f"blob {sha256} does not match its SHA-256")
        return data

    def get(self, sha256: str) -> bytes:
        data = self.read_stored(sha256)
        return self.keyring.open(data) if is_sealed(data) else data

    def iter_chunks(self, sha256: str, chunk_size: int = 1 << 16) -> Iterable[bytes]:
        """Stream a blob; the digest is checked at the end, before the last chunk is handed out."""
        with self.path(sha256).open("rb") as f:
            sealed = f.read(len(MAGIC)) == MAGIC
        if sealed:
            data = self.get(sha256)
            for i in range(0, len(data), chunk_size):
                yield data[i:i + chunk_size]
            return
        digest = hashlib.sha256()
        pending: bytes | None = None
        with self.path(sha256).open("rb") as f:
            while chunk := f.read(chunk_size):
                digest.update(chunk)
                if pending is not None:
                    yield pending
                pending = chunk
        if digest.hexdigest() != sha256:
            raise BlobCorrupted(f"blob {sha256} does not match its SHA-256")
        if pending is not None:
            yield pending
