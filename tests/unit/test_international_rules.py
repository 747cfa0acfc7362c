"""The international registry's holding rules, back-off and the circuit breaker: pure."""

from __future__ import annotations

import random

import pytest

from adapters.international.emulator.holdings import Refused, Registry
from adapters.international.resilience import Backoff, BreakerState, CircuitBreaker


def body(lo: int, hi: int, **more: object) -> dict[str, object]:
    return {
        "cooperative_approach": "CA0001",
        "party_registry": "GHA01",
        "first_transferring_party": "GHA",
        "vintage": 2024,
        "serial_first": lo,
        "serial_last": hi,
        **more,
    }


def refused(registry: Registry, party: str, kind: str, b: dict[str, object]) -> str:
    with pytest.raises(Refused) as caught:
        registry.apply(party, kind, b)
    return caught.value.code


def test_a_transfer_moves_a_part_and_use_retires_it() -> None:
    r = Registry()
    r.apply("GHA", "AUTHORIZATION", body(1, 100))
    r.apply("GHA", "FIRST_TRANSFER", body(1, 40, acquiring_party="CHE"))
    r.apply("CHE", "ACQUISITION", body(1, 40, transferring_party="GHA"))
    r.apply("CHE", "USE_NDC", body(1, 10))
    assert [(h["serial_first"], h["serial_last"]) for h in r.holdings("GHA")] == [(41, 100)]
    assert [(h["serial_first"], h["serial_last"]) for h in r.holdings("CHE")] == [(11, 40)]
    assert refused(r, "CHE", "USE_NDC", body(5, 15)) == "already_used"
    assert refused(r, "CHE", "USE_OIMP", body(41, 50)) == "insufficient_holding"
    assert refused(r, "GHA", "CANCELLATION", body(500, 510)) == "unknown_itmo"
    assert refused(r, "GHA", "FIRST_TRANSFER", body(1, 40)) == "invalid_action"  # done already
    assert refused(r, "CHE", "AUTHORIZATION", body(200, 210)) == "invalid_action"
    assert refused(r, "GHA", "AUTHORIZATION", body(50, 60)) == "invalid_action"  # exists
    assert refused(r, "GHA", "USE_NDC", body(9, 3)) == "invalid_action"
    assert refused(r, "GHA", "USE_NDC", {"serial_first": 1}) == "invalid_action"
    assert r.recorded == {"AUTHORIZATION": 1, "FIRST_TRANSFER": 1, "ACQUISITION": 1, "USE_NDC": 1}


def test_revocation_before_first_transfer_removes_the_itmos() -> None:
    r = Registry()
    r.apply("GHA", "AUTHORIZATION", body(1, 10))
    r.apply("GHA", "AUTHORIZATION", body(11, 20))
    r.apply("GHA", "FIRST_TRANSFER", body(11, 20))  # at authorization: stays with Ghana
    r.apply("GHA", "LABEL_REVOCATION", body(1, 10))
    r.apply("GHA", "LABEL_REVOCATION", body(11, 20))  # after first transfer: they stand
    assert [(h["serial_first"], h["serial_last"]) for h in r.holdings("GHA")] == [(11, 20)]


def test_backoff_is_jittered_exponential_and_capped() -> None:
    backoff, rng = Backoff(base=0.1, factor=2, cap=1.0), random.Random(1)
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (30, 1.0)]:
        waits = [backoff.delay(attempt, rng) for _ in range(200)]
        assert min(waits) >= 0 and max(waits) <= ceiling
        assert max(waits) > ceiling * 0.8  # jitter spreads up to the ceiling


def test_breaker_opens_waits_probes_and_closes() -> None:
    now = [100.0]
    breaker = CircuitBreaker(threshold=3, cooldown=1.0, max_cooldown=4.0, clock=lambda: now[0])
    for _ in range(2):
        breaker.failure()
    assert breaker.state == BreakerState.CLOSED and breaker.wait_time() == 0
    breaker.failure()
    assert breaker.state == BreakerState.OPEN and breaker.wait_time() == pytest.approx(1.0)
    now[0] += 1.0
    assert breaker.state == BreakerState.HALF_OPEN and breaker.wait_time() == 0
    breaker.failure()  # the probe failed: open twice as long
    assert breaker.state == BreakerState.OPEN and breaker.wait_time() == pytest.approx(2.0)
    now[0] += 2.0
    breaker.failure()
    now[0] += 4.0
    breaker.failure()
    assert breaker.cooldown == 4.0  # capped
    now[0] += 4.0
    breaker.success()
    assert breaker.state == BreakerState.CLOSED and breaker.cooldown == 1.0
    assert breaker.opened == 4
