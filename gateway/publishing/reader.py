"""Read a topic from the start and verify every message: what any downstream party can do."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from gateway.contract.codec import SingleObjectCodec
from gateway.contract.errors import ContractError
from gateway.contract.keys import KeyRing
from gateway.contract.message import verify_and_decode
from gateway.contract.models import RegistryEvent
from gateway.streaming.access import KafkaAccess


@dataclass
class VerifyTally:
    verified: Counter[str] = field(default_factory=Counter)  # by event type
    rejected: Counter[str] = field(default_factory=Counter)  # by reason
    partitions: Counter[int] = field(default_factory=Counter)
    events: list[RegistryEvent] = field(default_factory=list)
    keys_by_partition: dict[bytes, set[int]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.verified.values()) + sum(self.rejected.values())


async def read_and_verify(
    kafka: KafkaAccess | str,
    topic: str,
    keys: KeyRing,
    codec: SingleObjectCodec,
    *,
    expected: int,
    wait_seconds: float = 30.0,
    keep_events: bool = True,
) -> VerifyTally:
    """Consume ``topic`` from the beginning (no group, nothing committed) until ``expected``
    messages were read or ``wait_seconds`` passed."""

    consumer = AIOKafkaConsumer(
        topic,
        **KafkaAccess.of(kafka).options(),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    tally = VerifyTally()
    deadline = time.monotonic() + wait_seconds
    try:
        while tally.total < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=1000)
            for tp, messages in batches.items():
                for msg in messages:
                    tally.partitions[tp.partition] += 1
                    tally.keys_by_partition.setdefault(msg.key or b"", set()).add(tp.partition)
                    try:
                        event = verify_and_decode(msg.value, msg.headers, keys, codec)
                    except ContractError as exc:
                        tally.rejected[exc.reason] += 1
                        continue
                    except ValidationError:
                        tally.rejected["model_invalid"] += 1
                        continue
                    tally.verified[event.event_type] += 1
                    if keep_events:
                        tally.events.append(event)
    finally:
        await consumer.stop()
    return tally
