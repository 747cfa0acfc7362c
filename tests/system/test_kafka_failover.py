"""Failover on a three-node Apache Kafka cluster: leaders SIGKILLed and restarted, the
whole cluster paused, during a stream through the gateway, the national adapters and the
international adapter; every store ends as in an undisturbed run on the same cluster
shape: nothing lost, nothing applied twice (ops/failover.py)."""

from __future__ import annotations

import os

import pytest

from ops.chaos import one_run, stream
from ops.failover import failover

pytestmark = pytest.mark.kafka

EVENTS = int(os.environ.get("CRG_FAILOVER_EVENTS", "20000"))
PAUSE = float(os.environ.get("CRG_FAILOVER_PAUSE_SECONDS", "30"))


async def test_leaders_killed_and_restarted_and_the_cluster_paused_change_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    messages, key = stream(EVENTS, seed=5)
    runs = {}
    for disturbed in (False, True):
        runs[disturbed] = await one_run(
            messages,
            key,
            6,
            chaos=disturbed,
            seed=5,
            within=900,
            broker_kind="kafka",
            nodes=3,
            disrupt=failover(PAUSE) if disturbed else None,
        )
    calm, wild = runs[False], runs[True]
    with capsys.disabled():
        print(f"\nfailover: {EVENTS:,} events; undisturbed ledger {calm.ledger[:16]}")
        for line in wild.disruptions:
            print(f"  {line}")
        print(f"  disturbed ledger {wild.ledger[:16]}, ITMO {wild.nationals}")
    assert len(wild.disruptions) == 4
    assert calm.answered > 0 and calm.applied_twice == 0
    assert (wild.ledger, wild.nationals, wild.answered, wild.applied_twice) == (
        calm.ledger,
        calm.nationals,
        calm.answered,
        0,
    )
