"""Topic names (defaults under a configurable prefix) and their creation."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import NoError, TopicAlreadyExistsError, for_code
from aiokafka.partitioner import murmur2

from gateway.streaming.access import KafkaAccess, refusals


@dataclass(frozen=True)
class Topics:
    prefix: str = "crg"

    @property
    def raw(self) -> str:
        return f"{self.prefix}.registry.events"

    @property
    def verified(self) -> str:
        return f"{self.prefix}.registry.events.verified"

    @property
    def rejected(self) -> str:
        return f"{self.prefix}.registry.events.rejected"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}.alerts"

    @property
    def itmo_actions(self) -> str:
        return f"{self.prefix}.article6.itmo-actions"

    @property
    def itmo_actions_rejected(self) -> str:
        """Actions the international registry refused, with its answer."""
        return f"{self.prefix}.article6.itmo-actions.rejected"

    @property
    def authorizations(self) -> str:
        """Host Parties' signed authorizations (letters of authorization), keyed by letter."""
        return f"{self.prefix}.article6.authorizations"

    def group(self, consumer: str, party: str | None = None) -> str:
        """Consumer group id of one consumer of these topics (e.g. ``crg.gateway``); a
        national adapter's is its Party's own (``crg.national.gha``), so that several
        Parties run side by side."""
        return f"{self.prefix}.{consumer}" + (f".{party.lower()}" if party else "")

    def all(self) -> list[str]:
        return [
            self.raw,
            self.verified,
            self.rejected,
            self.alerts,
            self.itmo_actions,
            self.itmo_actions_rejected,
            self.authorizations,
        ]


def key_partition(key: bytes, partitions: int) -> int:
    """The partition of ``key`` among ``partitions``: murmur2, as the Java client's default
    partitioner and aiokafka's (librdkafka's default, CRC32, gives another one)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


@contextlib.asynccontextmanager
async def _admin(kafka: KafkaAccess | str) -> AsyncIterator[AIOKafkaAdminClient]:
    access = KafkaAccess.of(kafka)
    async with refusals(access):
        admin = AIOKafkaAdminClient(**access.options())
        await admin.start()
        try:
            yield admin
        finally:
            await admin.close()


async def ensure_topics(
    kafka: KafkaAccess | str, names: list[str], partitions: int, replication: int = 1
) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    async with _admin(kafka) as admin:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            # created by a concurrent caller meanwhile: the goal is met all the same
            with contextlib.suppress(TopicAlreadyExistsError):
                response = await admin.create_topics(
                    [
                        NewTopic(n, num_partitions=partitions, replication_factor=replication)
                        for n in missing
                    ]
                )
                for topic, code, *_ in response.topic_errors:
                    error = for_code(code)
                    if error is not NoError and error is not TopicAlreadyExistsError:
                        raise error(topic)
        return missing


async def list_topics(kafka: KafkaAccess | str) -> list[str]:
    """The topics this client may see (on a secured cluster: those it has an ACL on)."""
    async with _admin(kafka) as admin:
        return sorted(await admin.list_topics())


async def partition_leaders(kafka: KafkaAccess | str, topic: str) -> dict[int, int]:
    """Each partition of ``topic`` and the node leading it ({} when the topic does not
    exist), asked of the cluster. A consumer's ``partitions_for_topic`` knows only what
    its own metadata holds: on Apache Kafka not a topic it has not subscribed to, even
    after ``topics()``."""
    async with _admin(kafka) as admin:
        described = await admin.describe_topics([topic])
    return {
        int(p["partition"]): int(p["leader"])
        for t in described
        if t["topic"] == topic and t["error_code"] == 0
        for p in t["partitions"]
    }


async def topic_partitions(kafka: KafkaAccess | str, topic: str) -> list[int]:
    """The partitions of ``topic`` ([] when it does not exist)."""
    return sorted(await partition_leaders(kafka, topic))


async def read_to_end(kafka: KafkaAccess | str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every message on ``topic`` up to its current end, read without a group (nothing
    committed), whatever their number ([] when the topic does not exist)."""
    access = KafkaAccess.of(kafka)
    async with refusals(access):
        consumer = AIOKafkaConsumer(**access.options(), group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            known = await topic_partitions(access, topic)
            partitions = [TopicPartition(topic, p) for p in known]
            if not partitions:
                return []
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            out: list[ConsumerRecord[bytes, bytes]] = []

            async def behind() -> bool:
                return any([await consumer.position(tp) < ends[tp] for tp in partitions])

            # tansu's end offsets can lag behind batched writes (the last batch's first
            # offset + 1): read on until the reported ends are passed and a fetch is empty
            while True:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    out += records
                if not batch and not await behind():
                    return out
        finally:
            await consumer.stop()
