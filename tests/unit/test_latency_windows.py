"""The end-to-end benchmark's latency by window of sending (``p99_by_window``)."""

from __future__ import annotations

import math
import random

from ops.bench_e2e import p99_by_window


def test_each_window_holds_the_events_sent_in_it() -> None:
    rng = random.Random(3)
    # 3 windows of 5 s from t=100; waits of window k are k*100 ms plus up to 10 ms
    timed = [
        (100 + k * 5 + rng.random() * 4.99, k * 0.1 + rng.random() * 0.01)
        for k in range(3)
        for _ in range(200)
    ]
    rng.shuffle(timed)  # arrival order is not sending order
    p99 = p99_by_window(timed)
    assert len(p99) == 3
    for k, v in enumerate(p99):
        assert k * 100 <= v <= k * 100 + 10


def test_a_pause_in_sending_leaves_an_empty_window() -> None:
    p99 = p99_by_window([(0.0, 0.020), (0.5, 0.030), (11.0, 0.050)])
    assert p99[0] == 30.0
    assert math.isnan(p99[1])
    assert p99[2] == 50.0


def test_no_events_no_windows() -> None:
    assert p99_by_window([]) == []


def test_the_report_says_when_the_replay_could_not_be_timed() -> None:
    """A replay whose events all came in its first batch (timed from that batch's end)
    has no rate: the report says so instead of dividing by almost nothing."""
    from ops.bench_e2e import Figures, report

    timed = Figures(events=200_000, store="sqlite", bare_rate=30_000.0, first_adapter_rate=6_000.0)
    timed.replay_rate = 9_000.0
    untimed = Figures(events=500, store="sqlite", bare_rate=30_000.0, first_adapter_rate=3_000.0)
    assert "replay 9,000/s (1.50×)" in report(timed)
    assert "replay not measured" in report(untimed)
    assert "×" not in report(untimed).split("adapter:")[1].splitlines()[0]
