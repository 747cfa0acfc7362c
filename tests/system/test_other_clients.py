"""A registry may publish with any Kafka client. librdkafka (confluent-kafka) partitions
by CRC32 unless told ``murmur2_random``: configured so, its events are judged as
aiokafka's; left at its default, every event it puts on another partition than its
key's is rejected with ``partition_not_of_key`` and the others are accepted."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from gateway.contract.codec import default_codec
from gateway.contract.keys import KeyRing
from gateway.contract.message import EventSigner, SignedMessage
from gateway.contract.models import RegistryEvent
from gateway.service.ledger.backends import open_ledger
from gateway.streaming.topics import key_partition
from tests.conftest import RegistryKey
from tests.factories import block, envelope, issued
from tests.support.brokers import Broker
from tests.support.harness import Harness, reason_of

PARTITIONS = 6
PROJECTS = 40
KEY = RegistryKey("verra")


@pytest.fixture
async def harness(broker: Broker, tmp_path: Path) -> AsyncIterator[Harness]:
    ledger = open_ledger(f"sqlite://{tmp_path / 'ledger.sqlite'}")
    h = await Harness(broker, ledger, KeyRing([KEY.record]), partitions=PARTITIONS).start()
    yield h
    await h.stop()
    ledger.close()


def issuances() -> list[SignedMessage]:
    """One issuance for each of ``PROJECTS`` projects: each key its own."""
    signer = EventSigner(default_codec(), KEY.key_id, KEY.private)
    out = []
    for n in range(PROJECTS):
        project = f"P{n}"
        start = 1000 * (n + 1)
        payload = issued(serial_block=block(start, start + 999, f"VCS-{project}"))
        payload["project"] = {**payload["project"], "project_id": project, "name": project}
        fields = envelope(payload, event_id=f"e{n}", project_id=project, sequence=n + 1)
        out.append(signer.sign_event(RegistryEvent.model_validate(fields)))
    return out


def produce_with_librdkafka(
    harness: Harness, messages: list[SignedMessage], partitioner: str | None
) -> None:
    config: dict[str, str | bool] = {
        "bootstrap.servers": harness.broker.bootstrap_servers,
        "acks": "all",
    }
    if partitioner is not None:
        config["partitioner"] = partitioner
    producer = Producer(config)
    for m in messages:
        producer.produce(harness.topics.raw, m.value, key=m.key, headers=list(m.headers))
    assert producer.flush(30) == 0, "librdkafka could not deliver everything"
    harness.sent += len(messages)


@pytest.mark.parametrize("partitioner", ["murmur2_random", None])
async def test_a_librdkafka_publisher(harness: Harness, partitioner: str | None) -> None:
    messages = issuances()
    produce_with_librdkafka(harness, messages, partitioner)
    await harness.drain()
    keys = [m.key for m in messages if m.key is not None]
    # librdkafka's default: CRC32 of the key (consistent_random), another partition often
    misplaced = [k for k in keys if zlib.crc32(k) % PARTITIONS != key_partition(k, PARTITIONS)]
    wrong = 0 if partitioner == "murmur2_random" else len(misplaced)
    verified = await harness.read(harness.topics.verified, expected=PROJECTS - wrong)
    rejected = await harness.read(harness.topics.rejected, expected=wrong or None, wait=2)
    assert misplaced  # the two partitioners do differ on these keys
    if partitioner == "murmur2_random":
        assert (len(verified), rejected) == (PROJECTS, [])
    else:
        assert sorted(r.key for r in rejected if r.key) == sorted(misplaced)
        assert {reason_of(r) for r in rejected} == {"partition_not_of_key"}
        assert len(verified) == PROJECTS - len(misplaced)
