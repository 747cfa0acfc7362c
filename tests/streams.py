"""Streams for the crash and fuzz tests, signed with the tests' own generated keys."""

from __future__ import annotations

from gateway.contract.codec import default_codec
from gateway.contract.message import EventSigner, SignedMessage
from ops.loadgen import mixed_stream as _mixed_stream
from tests.conftest import RegistryKey


def mixed_stream(keys: dict[str, RegistryKey], n: int, seed: int = 7) -> list[SignedMessage]:
    codec = default_codec()
    signers = {r: EventSigner(codec, k.key_id, k.private) for r, k in keys.items()}
    return _mixed_stream(signers, n, seed=seed)
