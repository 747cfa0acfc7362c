"""A key ring that re-reads its storage every few seconds, so a key registered late is
used without restarting the gateway (then ``crg rejected reprocess``)."""

from __future__ import annotations

import time

from gateway.contract.keys import KeyRing
from gateway.keystore import KeyStorage


class ReloadingKeyRing:
    def __init__(self, storage: KeyStorage, every_seconds: float = 5.0) -> None:
        self.storage = storage
        self.every = every_seconds
        self._ring = storage.load()
        self._loaded = time.monotonic()

    def __call__(self) -> KeyRing:
        if time.monotonic() - self._loaded >= self.every:
            self._ring = self.storage.load()
            self._loaded = time.monotonic()
        return self._ring
