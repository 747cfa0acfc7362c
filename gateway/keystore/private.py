"""A registry's private signing keys: PEM files readable by their owner only (0600).

Only the publishing side (a registry, or ``crg publish``) ever holds these.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from gateway.contract.keys import KeyRecord, make_key_id, public_key_bytes

PASSPHRASE_ENV = "CRG_KEY_PASSPHRASE"


def _passphrase() -> bytes | None:
    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode() if value else None


def generate(registry_id: str, now: dt.datetime) -> tuple[Ed25519PrivateKey, KeyRecord]:
    private = Ed25519PrivateKey.generate()
    public = public_key_bytes(private)
    record = KeyRecord(registry_id, make_key_id(registry_id, public, now), public, valid_from=now)
    return private, record


def private_key_path(directory: Path, key_id: str) -> Path:
    """Where a key's private half lives: always a file directly in ``directory``."""
    path = directory / f"{key_id}.pem"
    if "/" in key_id or "\\" in key_id or key_id.startswith(".") or path.parent != directory:
        raise ValueError(f"{key_id!r} cannot name a private key file")
    return path


def write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    """Write PEM (PKCS#8; encrypted when CRG_KEY_PASSPHRASE is set); refuse to overwrite."""
    passphrase = _passphrase()
    encryption = BestAvailableEncryption(passphrase) if passphrase else NoEncryption()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, encryption)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise PermissionError(
            f"{path} is readable by others (mode {mode:o}); a private key must be 0600"
        )
    key = load_pem_private_key(path.read_bytes(), password=_passphrase())
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key
