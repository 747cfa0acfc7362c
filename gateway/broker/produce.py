"""Producing a list of ready messages at once (benchmarks, chaos runs, demos)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2


class Message(Protocol):
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


@functools.lru_cache(maxsize=65_536)
def key_hash(key: bytes) -> int:
    """The Java client's murmur2 of a key, as every Kafka client partitions by it
    (aiokafka's is pure Python; keys repeat: one per project)."""
    return int(murmur2(key)) & 0x7FFFFFFF


async def produce_all(bootstrap: str, topic: str, messages: Sequence[Message]) -> None:
    """Send every message to ``topic`` (acks=all) and wait until all are acknowledged.

    Messages go to the partition their key hashes to, as with ``send``, in order; but in
    batches built here, one future per batch rather than one per message: a publisher
    sharing the machine with what it measures should cost it as little as it can."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        pending: list[asyncio.Future[Any]] = []
        batches: dict[int, Any] = {}
        for i, m in enumerate(messages):
            # no key: spread round the partitions
            spot = key_hash(m.key) if m.key is not None else i
            partition = partitions[spot % len(partitions)]
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = producer.create_batch()
            if batch.append(key=m.key, value=m.value, timestamp=None, headers=list(m.headers)):
                continue
            pending.append(await producer.send_batch(batch, topic, partition=partition))
            batch = batches[partition] = producer.create_batch()
            if batch.append(key=m.key, value=m.value, timestamp=None, headers=list(m.headers)):
                continue
            raise ValueError(f"a message of {len(m.value):,} bytes does not fit in a batch")
        for partition, batch in batches.items():
            if batch.record_count():
                pending.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
