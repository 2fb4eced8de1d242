"""Encryption at rest of a collectivité's personal data (RH flows): AES-256-GCM, one key per
collectivité, keys kept as files outside the database (`<keys_dir>/<siren>.key`, mode 0600).

A sealed blob is `MAGIC | siren (9 bytes) | nonce (12 bytes) | ciphertext+tag`; the header is the
GCM associated data, so a blob moved to another collectivité's name does not decrypt.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"DMBAESGCM1"
HEADER = len(MAGIC) + 9
NONCE = 12


class KeyUnavailable(Exception):
    pass


def is_sealed(data: bytes) -> bool:
    return data[: len(MAGIC)] == MAGIC


class KeyRing:
    def __init__(self, keys_dir: Path) -> None:
        self.keys_dir = Path(keys_dir)
        self._keys: dict[str, bytes] = {}

    def key(self, siren: str, *, create: bool = False) -> bytes:
        if siren in self._keys:
            return self._keys[siren]
        if not (len(siren) == 9 and siren.isdigit()):
            raise KeyUnavailable(f"invalid SIREN {siren!r}")
        path = self.keys_dir / f"{siren}.key"
        if create and not path.exists():
            self.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process created it a moment ago: use theirs
            else:
                with os.fdopen(fd, "wb") as out:
                    out.write(secrets.token_bytes(32))
                    out.flush()
                    os.fsync(out.fileno())
        try:
            key = path.read_bytes()
        except FileNotFoundError:
            raise KeyUnavailable(f"no encryption key for collectivité {siren} in {self.keys_dir}") from None
        if len(key) != 32:
            raise KeyUnavailable(f"encryption key of {siren} is not 32 bytes")
        self._keys[siren] = key
        return key

    def seal(self, siren: str, data: bytes) -> bytes:
        header = MAGIC + siren.encode("ascii")
        nonce = secrets.token_bytes(NONCE)
        return header + nonce + AESGCM(self.key(siren, create=True)).encrypt(nonce, data, header)

    def open(self, data: bytes) -> bytes:
        header, nonce, body = data[:HEADER], data[HEADER:HEADER + NONCE], data[HEADER + NONCE:]
        siren = header[len(MAGIC):].decode("ascii", "replace")
        return AESGCM(self.key(siren)).decrypt(nonce, body, header)
