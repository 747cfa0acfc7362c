"""100,000 hostile messages through the real broker and the gateway: every one rejected
with a reason, none accepted, and the gateway keeps going."""

from __future__ import annotations

import base64
import os
import random
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from gateway.contract.codec import default_codec
from gateway.contract.keys import KeyRing
from gateway.contract.message import HEADER_KEY_ID, HEADER_SIGNATURE, SignedMessage
from gateway.contract.signing import encode_signature, sign
from gateway.service.ledger.backends import open_ledger
from tests.conftest import T0, RegistryKey
from tests.streams import mixed_stream
from tests.support.brokers import Broker
from tests.support.harness import Harness

pytestmark = pytest.mark.broker
COUNT = int(os.environ.get("CRG_FUZZ_MESSAGES", "100000"))

Message = tuple[bytes | None, bytes, list[tuple[str, bytes]]]


def hostile(rng: random.Random, valid: list[SignedMessage], key: RegistryKey) -> Message:
    base = rng.choice(valid)
    value, headers = bytearray(base.value), list(base.headers)
    kind = rng.randrange(9)
    if kind == 0:  # bit flips in the value
        for _ in range(rng.randint(1, 4)):
            value[rng.randrange(len(value))] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncated
        value = value[: rng.randrange(len(value))]
    elif kind == 2:  # trailing garbage
        value += rng.randbytes(rng.randint(1, 20))
    elif kind == 3:  # random bytes with the original headers
        value = bytearray(rng.randbytes(rng.randint(0, 400)))
    elif kind == 4:  # random bytes validly signed by a registered key
        value = bytearray(rng.choice([b"\xc3\x01", b""]) + rng.randbytes(rng.randint(0, 300)))
        headers = [
            (HEADER_KEY_ID, key.key_id.encode()),
            (HEADER_SIGNATURE, encode_signature(sign(key.private, bytes(value)))),
        ]
    elif kind == 5:  # signature of another message
        other = rng.choice([m for m in valid if m is not base])
        headers = [
            (k, v) if k != HEADER_SIGNATURE else (k, dict(other.headers)[k]) for k, v in headers
        ]
    elif kind == 6:  # mangled signature header
        headers = [
            (k, v)
            if k != HEADER_SIGNATURE
            else (
                k,
                rng.choice(
                    [b"", b"!!", base64.b64encode(rng.randbytes(rng.choice([32, 63, 64, 65])))]
                ),
            )
            for k, v in headers
        ]
    elif kind == 7:  # unknown or mangled key id
        headers = [
            (k, v)
            if k != HEADER_KEY_ID
            else (k, rng.choice([b"", b"\xff\xfe", b"verra-unknown", rng.randbytes(8)]))
            for k, v in headers
        ]
    else:  # headers dropped
        headers = [
            (k, v)
            for k, v in headers
            if rng.random() < 0.5 and k not in (HEADER_KEY_ID, HEADER_SIGNATURE)
        ]
    if bytes(value) == base.value and headers == list(base.headers):
        value = value + b"\x00"  # never send a valid original by accident
    return base.key, bytes(value), headers


async def test_hostile_messages_are_all_rejected(broker: Broker, tmp_path: Path) -> None:
    key = RegistryKey("verra", valid_from=T0)
    valid = mixed_stream({"verra": key}, 300, seed=11)
    rng = random.Random(99)
    ledger = open_ledger(f"sqlite://{tmp_path / 'l.sqlite'}")
    harness = await Harness(broker, ledger, KeyRing([key.record]), partitions=2).start()
    producer = AIOKafkaProducer(
        bootstrap_servers=broker.bootstrap_servers, acks=1, linger_ms=20, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        futures = []
        for _ in range(COUNT):
            k, v, h = hostile(rng, valid, key)
            futures.append(await producer.send(harness.topics.raw, v, key=k, headers=h))
        for f in futures:
            await f
        harness.sent = COUNT
    finally:
        await producer.stop()
    try:
        await harness.drain(wait_seconds=600)
    finally:
        await harness.stop()
    assert harness.gateway is not None and harness.gateway.processed == COUNT
    assert ledger.accepted_count() == 0
    reasons = Counter(r.reason for r in ledger.rejected(limit=COUNT + 1))
    assert sum(reasons.values()) == COUNT
    # the mutations reach every gate: signature, keys, decoding
    assert {
        "signature_invalid",
        "signature_missing",
        "key_unknown",
        "undecodable.bad_marker",
        "undecodable.unknown_schema",
    } <= set(reasons)
    ledger.close()


async def test_control_characters_are_rejected_and_the_gateway_goes_on_on_postgresql(
    broker: Broker, pg_url: str
) -> None:
    """A NUL in a string made PostgreSQL refuse the ledger row and stopped the gateway, on
    every restart. Validly signed events carrying C0 controls in any string are rejected
    ``model_invalid``; the good events around them are accepted."""
    key = RegistryKey("verra", valid_from=T0)
    valid = mixed_stream({"verra": key}, 20, seed=5)
    codec = default_codec()
    poisoned: list[Message] = []
    for n, (field, poison) in enumerate(
        [("event_id", "nul\x00event"), ("project_id", "p\x00"), ("event_id", "esc\x1b[2J")]
    ):
        record = codec.decode(valid[n].value)
        record[field] = poison
        value = codec.encode(record)
        poisoned.append((valid[n].key, value, [
            (HEADER_KEY_ID, key.key_id.encode()),
            (HEADER_SIGNATURE, encode_signature(sign(key.private, value))),
        ]))  # fmt: skip
    ledger = open_ledger(pg_url)
    harness = await Harness(broker, ledger, KeyRing([key.record]), partitions=1).start()
    try:
        await harness.send(*poisoned, *valid)
        await harness.drain()
    finally:
        await harness.stop()
    assert harness.gateway is not None and harness.gateway.processed == harness.sent
    reasons = Counter(r.reason for r in ledger.rejected(limit=100))
    assert reasons["model_invalid"] == len(poisoned)
    assert ledger.accepted_count() + sum(reasons.values()) == harness.sent
    assert ledger.accepted_count() > 0
    ledger.close()
