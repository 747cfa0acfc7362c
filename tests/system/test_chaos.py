"""ops/chaos in CI, with fewer rounds (the full 20-round run is in the closing note):
SIGKILLs and broker pauses during a stream leave every store as an undisturbed run."""

from __future__ import annotations

import os

import pytest

from ops.chaos import one_run, stream
from tests.support.brokers import BROKERS


@pytest.mark.parametrize("kind", BROKERS)
async def test_chaos_rounds_end_with_the_undisturbed_stores(kind: str) -> None:
    rounds = int(os.environ.get("CRG_CHAOS_ROUNDS", "4"))
    messages, key = stream(int(os.environ.get("CRG_CHAOS_EVENTS", "1200")), seed=3)
    calm = await one_run(messages, key, rounds, chaos=False, seed=3, within=300, broker_kind=kind)
    wild = await one_run(messages, key, rounds, chaos=True, seed=4, within=300, broker_kind=kind)
    assert len(wild.disruptions) == rounds
    assert calm.answered > 0 and calm.applied_twice == 0
    assert (wild.ledger, wild.nationals, wild.answered, wild.applied_twice) == (
        calm.ledger,
        calm.nationals,
        calm.answered,
        0,
    )
