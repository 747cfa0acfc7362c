"""Where registry public keys are kept: a JSON file (embedded default) or PostgreSQL.

Both backends implement :class:`KeyStorage` and pass the same contract tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from gateway.contract.keys import KeyRecord, KeyRing
from gateway.keystore.file import FileKeyStorage
from gateway.keystore.postgres import PostgresKeyStorage


class KeyStorage(Protocol):
    def load(self) -> KeyRing:
        """Every stored key record."""
        ...

    def save(self, records: list[KeyRecord]) -> None:
        """Insert or update records, all or none."""
        ...


def open_key_storage(url: str) -> KeyStorage:
    """``file:///path/keys.json`` or a bare path, or ``postgresql://…``."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresKeyStorage(url)

    return FileKeyStorage(Path(url.removeprefix("file://")))
