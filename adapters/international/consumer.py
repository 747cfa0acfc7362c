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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from adapters.international.client import Outcome, RegistryClient, Retryable
from adapters.international.resilience import Backoff, BreakerState, CircuitBreaker
from adapters.international.store import Held, InternationalStore
from gateway.contract.errors import ContractError
from gateway.contract.itmo import ItmoAction, action_problems, causes
from gateway.contract.itmo_message import action_headers, decode_action, verify_action
from gateway.contract.keys import KeyRing
from gateway.streaming.access import KafkaAccess
from gateway.streaming.process import Batch, ConsumerProcess, Incoming, Interrupted
from gateway.streaming.topics import Topics

log = structlog.get_logger("crg.international")

#: how long an action waits for the action of another Party it follows, from when it was
#: consumed, before it is sent all the same (seconds)
HOLD_LIMIT = 300.0
#: how long an action waits within one round for the action it follows, on another lane
ROUND_WAIT = 5.0


@dataclass(frozen=True)
class _Item:
    """An action in its Party's lane: consumed now, or held from before."""

    key: tuple[int, int]  # partition and offset it was consumed at
    source: str
    value: bytes
    action: ItmoAction
    held: Held | None
    since: float  # Unix seconds: consumed, or held since


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
        self._to_hold: dict[tuple[int, int], _Item] = {}
        self._released: list[_Item] = []
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
        """Deliver the held actions that may go now, then the batch's, each Party's in
        order; an action whose cause is not answered yet is held, and so is everything
        after it in its Party's lane."""
        self._outcomes, self._to_hold, self._released = {}, {}, []
        lanes = self._held_lanes()
        ids = [a.action_id for a in batch.prepared if a is not None]
        done: set[str] = self.international.known(ids)
        done.update(i.action.action_id for lane in lanes.values() for i in lane)  # held
        now = time.time()
        for msg, action in batch.items():
            if action is not None and action.action_id not in done:
                done.add(action.action_id)  # a repeat later in the batch is not sent again
                item = _Item((msg.partition, msg.offset), msg.source, msg.value, action, None, now)
                lanes.setdefault(action.party, []).append(item)
        await self._run(lanes)

    def _held_lanes(self) -> dict[str, list[_Item]]:
        """The held actions, each Party's in order, as the start of its lane."""
        lanes: dict[str, list[_Item]] = {}
        for h in self.international.held():
            action = decode_action(h.value)  # verified when consumed; our own store since
            item = _Item((h.partition, h.offset), h.source, h.value, action, h, h.held_since)
            lanes.setdefault(h.party, []).append(item)
        return lanes

    async def _run(self, lanes: dict[str, list[_Item]]) -> None:
        settled = {i.action.action_id: asyncio.Event() for lane in lanes.values() for i in lane}
        wanted = {c for lane in lanes.values() for i in lane for c in causes(i.action)}
        answered = self.international.known(sorted(wanted))

        async def lane(items: list[_Item]) -> None:
            blocked = False
            for item in items:
                if blocked or not await self._may_go(item, answered, settled):
                    blocked = True
                    self._to_hold[item.key] = item
                else:
                    self._outcomes[item.key] = await self.deliver(item.action)
                    answered.add(item.action.action_id)
                    if item.held is not None:
                        self._released.append(item)
                settled[item.action.action_id].set()  # answered, or held: either way known

        await asyncio.gather(*(lane(items) for items in lanes.values()))

    async def _may_go(
        self, item: _Item, answered: set[str], settled: dict[str, asyncio.Event]
    ) -> bool:
        """May this action go now: what it follows is answered, comes in this round and is
        answered meanwhile, is for a Party this adapter does not serve, or has been waited
        for ``HOLD_LIMIT`` seconds already (then it goes, and the registry decides)."""
        follows = causes(item.action)
        if not follows or answered.intersection(follows):
            return True
        transferring = item.action.transferring_party
        if self.parties is not None and transferring not in self.parties:
            return True
        for cause in (c for c in follows if c in settled):
            # set once it is answered or held; bounded, for two lanes may wait on each
            # other (A acquires from B what B's lane holds behind its own acquisition
            # from A): then both are held, and go after HOLD_LIMIT at the latest
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(settled[cause].wait(), ROUND_WAIT)
            if cause in answered:
                return True
        if time.time() - item.since < HOLD_LIMIT:
            return False
        log.warning(
            "international.cause_missing", action_id=item.action.action_id,
            party=item.action.party, transferring_party=transferring, held_seconds=HOLD_LIMIT,
        )  # fmt: skip
        return True

    async def idle(self) -> None:
        """Nothing new: deliver the held actions whose causes got answered (or whose wait
        is over), in a transaction of their own."""
        lanes = self._held_lanes()
        if not lanes:
            return
        self._outcomes, self._to_hold, self._released = {}, {}, []
        try:
            await self._run(lanes)
        except Interrupted:
            return
        if self._released:
            await self.commit_aside(self._record_released)

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
        counts = {"recorded": 0, "rejected": 0, "repeat": 0, "refused": 0, "held": 0}
        hold: list[Held] = []
        released = {i.key for i in self._released}
        for msg, action in items:
            if action is None:
                counts["refused"] += 1  # said in prepare: never sent
                continue
            key = (msg.partition, msg.offset)
            result = None if key in released else self._outcomes.get(key)
            if result is not None:
                outcome, attempts = result
                self._record(action, outcome, attempts, msg.source, key, msg.value, msg.headers)
                counts[outcome.outcome] += 1
            elif key in self._to_hold and key not in released and self._to_hold[key].held is None:
                item = self._to_hold[key]
                hold.append(Held(action.party, msg.partition, msg.offset, msg.source,
                                 action.action_id, msg.value, item.since))  # fmt: skip
                counts["held"] += 1
            else:
                counts["repeat"] += 1  # answered before (a replay or a repeated message)
        self.international.hold(hold)
        counts["released"] = self._record_released()
        return counts

    def _record_released(self) -> int:
        """Record the answers to held actions delivered this round; they are held no more."""
        for item in self._released:
            outcome, attempts = self._outcomes[item.key]
            headers = action_headers(item.action)
            self._record(item.action, outcome, attempts, item.source, item.key, item.value,
                         headers)  # fmt: skip
        self.international.release(i.held for i in self._released if i.held is not None)
        released, self._released = len(self._released), []
        return released

    def _record(
        self,
        action: ItmoAction,
        outcome: Outcome,
        attempts: int,
        source: str,
        key: tuple[int, int],
        value: bytes,
        headers: Sequence[tuple[str, bytes]],
    ) -> None:
        store = self.international
        store.record(
            action.action_id, action.party, action.action_type.value, outcome, attempts, source
        )
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
                key[0],
                key[1],
                self.topics.itmo_actions_rejected,
                action.party.encode(),
                value,
                [
                    *headers,
                    ("crg_registry_status", str(outcome.status).encode()),
                    ("crg_registry_error", str(outcome.answer.get("error", "")).encode()),
                    (
                        "crg_registry_message",
                        str(outcome.answer.get("message", ""))[:1000].encode(),
                    ),
                ],
            )
