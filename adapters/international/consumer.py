"""``crg adapter international``: ITMO actions from ``crg.article6.itmo-actions`` become
calls to the international registry, exactly once in effect.

A :class:`~gateway.streaming.process.ConsumerProcess`. For each batch, before its
transaction, every action without a recorded answer is delivered — one lane per
partition, so each Party's actions go in order — retrying timeouts, resets, 429 and 5xx
with jittered exponential back-off behind a circuit breaker that pauses the lane while
the registry is down (no busy loop; the one batch fetched ahead is all that waits in
memory). Then one transaction records each final answer against its action id with the
consumed offsets; refused actions (4xx) also go to ``crg.article6.itmo-actions.rejected``
with the registry's answer. A crash before that commit repeats the calls with the same
idempotency keys, and the registry answers them as before.

It trusts no topic: an action not signed by a valid key of its reporting Party
(``verify_action``), that does not decode, is unfit (``action_problems``: Party codes,
numbers, the action id its fields give) or is for a Party this adapter does not serve
(``CRG_INTERNATIONAL_PARTIES``) is refused before any call — counted, logged as
``international.refused`` with the reason, never sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable

import structlog

from adapters.international.client import Outcome, RegistryClient, Retryable
from adapters.international.resilience import Backoff, BreakerState, CircuitBreaker
from adapters.international.store import InternationalStore
from gateway.contract.errors import ContractError
from gateway.contract.itmo import ItmoAction, action_problems
from gateway.contract.itmo_message import verify_action
from gateway.contract.keys import KeyRing
from gateway.streaming.access import KafkaAccess
from gateway.streaming.process import Batch, ConsumerProcess, Incoming, Interrupted
from gateway.streaming.topics import Topics

log = structlog.get_logger("crg.international")


class InternationalAdapter(ConsumerProcess[ItmoAction | None]):
    """``keys``: the trust store (the Parties' keys), or what returns it; ``parties``: the
    Parties it acts for (every Party when None)."""

    name = "crg-international"
    max_poll_interval_ms = 3_600_000  # an outage of the registry may last long

    def __init__(
        self,
        *,
        kafka: KafkaAccess | str,
        store: InternationalStore,
        topics: Topics,
        client: RegistryClient,
        keys: KeyRing | Callable[[], KeyRing],
        backoff: Backoff | None = None,
        breaker: CircuitBreaker | None = None,
        seed: int | None = None,
        idempotence: bool = False,
        max_batch: int = 500,
        group_id: str | None = None,
        outputs: Topics | None = None,
        parties: frozenset[str] | None = None,
    ) -> None:
        super().__init__(
            kafka=kafka,
            store=store,
            topic=topics.itmo_actions,
            group_id=topics.group("international") if group_id is None else group_id,
            topics=topics,
            outputs=outputs,
            idempotence=idempotence,
            max_batch=max_batch,
        )
        self.international = store
        self.client = client
        self.backoff = backoff or Backoff()
        self.breaker = breaker or CircuitBreaker()
        self._rng = random.Random(seed)
        self._outcomes: dict[tuple[int, int], tuple[Outcome, int]] = {}
        self.calls = 0  # attempts made, for figures
        self.parties = parties
        self._keys = keys
        self.refused = 0  # actions refused before any call

    def prepare(self, messages: list[Incoming]) -> list[ItmoAction | None]:
        """Each action fit to act on, or None: refused before any call, with its reason."""
        out: list[ItmoAction | None] = []
        keys = self._keys() if callable(self._keys) else self._keys
        for msg in messages:
            try:
                action = verify_action(msg.value, msg.headers, keys)
            except ContractError as exc:
                self._refuse(msg, exc.reason.value, str(exc))
                out.append(None)
                continue
            problems = action_problems(action)
            if problems:
                self._refuse(msg, "action_unfit", "; ".join(problems))
            elif self.parties is not None and action.party not in self.parties:
                self._refuse(msg, "party_not_served", action.party)
            else:
                out.append(action)
                continue
            out.append(None)
        return out

    def _refuse(self, msg: Incoming, reason: str, detail: str) -> None:
        self.refused += 1
        log.error("international.refused", source=msg.source, reason=reason, detail=detail[:300])

    async def act(self, batch: Batch[ItmoAction | None]) -> None:
        self._outcomes = {}
        ids = [a.action_id for a in batch.prepared if a is not None]
        done: set[str] = self.international.known(ids)
        lanes: dict[int, list[tuple[Incoming, ItmoAction]]] = {}
        for msg, action in batch.items():
            if action is not None and action.action_id not in done:
                done.add(action.action_id)  # a repeat later in the batch is not sent again
                lanes.setdefault(msg.partition, []).append((msg, action))

        async def lane(items: list[tuple[Incoming, ItmoAction]]) -> None:
            for msg, action in items:
                self._outcomes[(msg.partition, msg.offset)] = await self.deliver(action)

        await asyncio.gather(*(lane(items) for items in lanes.values()))

    async def deliver(self, action: ItmoAction) -> tuple[Outcome, int]:
        """Call until the registry gives a final answer; never give up on an action."""
        attempt = 0
        while True:
            if self.stopping.is_set():
                raise Interrupted
            wait = self.breaker.wait_time()
            if wait > 0:
                await self._pause(wait)
                continue
            attempt += 1
            self.calls += 1
            try:
                outcome = await self.client.submit(action)
            except Retryable as exc:
                was = self.breaker.state
                self.breaker.failure()
                if self.breaker.state == BreakerState.OPEN and was != BreakerState.OPEN:
                    log.warning(
                        "international.breaker_open",
                        failures=self.breaker.failures,
                        cooldown=self.breaker.cooldown,
                        error=str(exc),
                    )
                await self._pause(exc.retry_after or self.backoff.delay(attempt, self._rng))
                continue
            if self.breaker.opened_at is not None:
                log.info("international.breaker_closed")
            self.breaker.success()
            return outcome, attempt

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the process is asked to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    def handle(self, items: list[tuple[Incoming, ItmoAction | None]]) -> dict[str, int]:
        store = self.international
        counts = {"recorded": 0, "rejected": 0, "repeat": 0, "refused": 0}
        for msg, action in items:
            if action is None:
                counts["refused"] += 1  # said in prepare: never sent
                continue
            result = self._outcomes.get((msg.partition, msg.offset))
            if result is None:
                counts["repeat"] += 1  # answered before (a replay or a repeated message)
                continue
            outcome, attempts = result
            store.record(
                action.action_id,
                action.party,
                action.action_type.value,
                outcome,
                attempts,
                msg.source,
            )
            counts[outcome.outcome] += 1
            log.info(
                "international.answer",
                action_id=action.action_id,
                party=action.party,
                action=action.action_type.value,
                outcome=outcome.outcome,
                status=outcome.status,
                attempts=attempts,
            )
            if outcome.outcome == "rejected":
                store.outbox_add(
                    msg.partition,
                    msg.offset,
                    self.topics.itmo_actions_rejected,
                    action.party.encode(),
                    msg.value,
                    [
                        *msg.headers,
                        ("crg_registry_status", str(outcome.status).encode()),
                        ("crg_registry_error", str(outcome.answer.get("error", "")).encode()),
                        (
                            "crg_registry_message",
                            str(outcome.answer.get("message", ""))[:1000].encode(),
                        ),
                    ],
                )
        return counts
