"""Broker failover on a three-node Apache Kafka cluster (replication factor 3,
``min.insync.replicas`` 2, producers ``acks=all``), for :func:`ops.chaos.one_run`: during
the stream the leader of a busy raw partition is SIGKILLed, later restarted, then the
leader of another is killed, and finally the whole cluster is frozen (SIGSTOP) for a
while and resumed. The components are never restarted by hand."""

from __future__ import annotations

import asyncio
import random

from gateway.streaming.apache_kafka import KafkaCluster
from gateway.streaming.topics import Topics, partition_leaders
from ops.chaos import Disrupt
from ops.processes import Broker, Processes


def failover(pause_seconds: float) -> Disrupt:
    """The disruptions of rounds 1, 3, 4 and 5 (the others have none)."""
    down: list[int] = []

    async def disrupt(r: int, broker: Broker, parts: Processes, _: random.Random) -> str | None:
        assert isinstance(broker, KafkaCluster) and broker.nodes == 3
        topic = Topics(parts.env["CRG_TOPIC_PREFIX"]).raw
        if r in (0, 3):  # kill the leader of a busy partition (0, later 1)
            leader = (await partition_leaders(broker.bootstrap_servers, topic))[r // 3]
            broker.kill(leader)
            down.append(leader)
            return f"round {r + 1}: SIGKILL node {leader}, leader of {topic}/{r // 3}"
        if r == 2:
            node = down.pop()
            broker.start_node(node)
            await asyncio.to_thread(broker.wait_node, node)
            return f"round {r + 1}: node {node} restarted"
        if r == 4:
            broker.pause()
            await asyncio.sleep(pause_seconds)
            broker.resume()
            return f"round {r + 1}: the whole cluster paused {pause_seconds:.0f} s"
        return None

    return disrupt
