"""Producing many messages at once: in batches built here, one future per batch.

aiokafka's ``send`` costs a future, a partitioner call and an accumulator lookup per
message; building each partition's batch here and handing it over whole
(``send_batch``) does the same work for a fraction of the CPU. Partitions are chosen as
``send`` chooses them (the Java client's murmur2 of the key), so a key's messages land
where any other producer would put them, in order.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from gateway.streaming.access import KafkaAccess

Headers = Sequence[tuple[str, bytes]]
#: a message to send: topic, key, value, headers
Outgoing = tuple[str, bytes | None, bytes, Headers]


class Message(Protocol):
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes: ...
    @property
    def headers(self) -> Headers: ...


@dataclass(frozen=True)
class Produced:
    """A message built to be produced (what :class:`Message` asks of one)."""

    key: bytes | None
    value: bytes
    headers: Headers = ()


@functools.lru_cache(maxsize=65_536)
def key_hash(key: bytes) -> int:
    """The Java client's murmur2 of a key (aiokafka's is pure Python; keys repeat: one
    per project)."""
    return int(murmur2(key)) & 0x7FFFFFFF


async def send_in_batches(
    producer: AIOKafkaProducer, messages: Iterable[Outgoing]
) -> list[asyncio.Future[Any]]:
    """Enqueue ``messages`` in order, each partition's in batches; the futures are done
    when the broker has acknowledged every batch. Keyless messages are spread round the
    partitions."""
    partitions: dict[str, list[int]] = {}
    open_batches: dict[tuple[str, int], Any] = {}
    futures: list[asyncio.Future[Any]] = []
    for i, (topic, key, value, headers) in enumerate(messages):
        spread = partitions.get(topic)
        if spread is None:
            spread = partitions[topic] = sorted(await producer.partitions_for(topic))
        partition = spread[(key_hash(key) if key is not None else i) % len(spread)]
        batch = open_batches.get((topic, partition))
        if batch is None:
            batch = open_batches[topic, partition] = producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None, headers=list(headers)) is None:
            futures.append(await producer.send_batch(batch, topic, partition=partition))
            batch = open_batches[topic, partition] = producer.create_batch()
            batch.append(key=key, value=value, timestamp=None, headers=list(headers))
            # (a fresh batch always takes its first message, whatever its size)
    for (topic, partition), batch in open_batches.items():
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures


async def produce_all(kafka: KafkaAccess | str, topic: str, messages: Sequence[Message]) -> None:
    """Send every message to ``topic`` (acks=all) and wait until all are acknowledged
    (benchmarks, chaos runs, demos)."""
    producer = AIOKafkaProducer(
        **KafkaAccess.of(kafka).options(), acks="all", linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        await asyncio.gather(
            *await send_in_batches(producer, ((topic, m.key, m.value, m.headers) for m in messages))
        )
    finally:
        await producer.stop()
