"""Back-off with jitter and a circuit breaker: how the adapter waits when the registry
fails. Pure (the clock and the random source are given), so tested without a network."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off with full jitter (a random wait up to the exponential cap),
    so many clients retrying at once spread out."""

    base: float = 0.05  # seconds before the first retry, at most
    factor: float = 2.0
    cap: float = 5.0  # no single wait longer than this

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The wait before retry number ``attempt`` (1 for the first retry)."""
        return rng.uniform(0, min(self.cap, self.base * self.factor ** max(attempt - 1, 0)))


class BreakerState(StrEnum):
    CLOSED = "closed"  # calls go through
    OPEN = "open"  # calls wait: the registry is taken to be down
    HALF_OPEN = "half_open"  # one probe call decides


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; while open, callers wait rather
    than call (no busy loop); after ``cooldown`` one probe goes through: success closes
    it, failure opens it again for twice as long, up to ``max_cooldown``."""

    def __init__(
        self,
        threshold: int = 5,
        cooldown: float = 0.5,
        max_cooldown: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.base_cooldown = cooldown
        self.max_cooldown = max_cooldown
        self.clock = clock
        self.failures = 0
        self.cooldown = cooldown
        self.opened_at: float | None = None
        self.opened = 0  # how many times it opened (a metric)

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return BreakerState.CLOSED
        if self.clock() - self.opened_at >= self.cooldown:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def wait_time(self) -> float:
        """How long a caller must wait before its next call (0: call now)."""
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.cooldown - self.clock())

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self.cooldown = self.base_cooldown

    def failure(self) -> None:
        self.failures += 1
        if self.state == BreakerState.HALF_OPEN:  # the probe failed
            self.cooldown = min(self.cooldown * 2, self.max_cooldown)
            self.opened_at = self.clock()
            self.opened += 1
        elif self.opened_at is None and self.failures >= self.threshold:
            self.opened_at = self.clock()
            self.opened += 1
