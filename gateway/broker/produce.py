"""Producing a list of ready messages at once (benchmarks, chaos runs, demos)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from aiokafka import AIOKafkaProducer


class Message(Protocol):
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


async def produce_all(bootstrap: str, topic: str, messages: Sequence[Message]) -> None:
    """Send every message to ``topic`` (acks=all) and wait until all are acknowledged."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topic, m.value, key=m.key, headers=list(m.headers))
            for m in messages
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
