"""Topic names (defaults under a configurable prefix) and their creation."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import murmur2


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
        ]


def key_partition(key: bytes, partitions: int) -> int:
    """The partition of ``key`` among ``partitions``: murmur2, as the Java client's default
    partitioner and aiokafka's (librdkafka's default, CRC32, gives another one)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


async def ensure_topics(
    bootstrap_servers: str, names: list[str], partitions: int, replication: int = 1
) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            # created by a concurrent caller meanwhile: the goal is met all the same
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(n, num_partitions=partitions, replication_factor=replication)
                        for n in missing
                    ]
                )
        return missing
    finally:
        await admin.close()


async def list_topics(bootstrap_servers: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        return sorted(await admin.list_topics())
    finally:
        await admin.close()


async def partition_leaders(bootstrap_servers: str, topic: str) -> dict[int, int]:
    """Each partition of ``topic`` and the node leading it ({} when the topic does not
    exist), asked of the cluster. A consumer's ``partitions_for_topic`` knows only what
    its own metadata holds: on Apache Kafka not a topic it has not subscribed to, even
    after ``topics()``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return {
        int(p["partition"]): int(p["leader"])
        for t in described
        if t["topic"] == topic and t["error_code"] == 0
        for p in t["partitions"]
    }


async def topic_partitions(bootstrap_servers: str, topic: str) -> list[int]:
    """The partitions of ``topic`` ([] when it does not exist)."""
    return sorted(await partition_leaders(bootstrap_servers, topic))
