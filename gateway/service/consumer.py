"""``crg gateway``: the consumer group on the raw topic.

A :class:`~gateway.streaming.process.ConsumerProcess` whose preparation is authentication
(signature, key, decoding, model; on every core, as Ed25519 verification releases the
GIL) and whose handling judges each message against the ledger and puts its verdict in
the outbox, in the batch's one ledger transaction.

A crash before a commit loses nothing: the batch is judged again from the same ledger
state. A crash after it leaves outbox rows that the partition's next owner produces
first: a verdict is never produced twice *differently*; at worst the identical message
twice, which downstream consumers drop by event id. The ledger, not Kafka's group
offsets, says where to resume.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from gateway.contract.attestation import Attester
from gateway.contract.codec import SingleObjectCodec
from gateway.contract.keys import KeyRing
from gateway.contract.models import RegistryEvent
from gateway.metrics import ALERTS, BATCH_SECONDS, BATCH_SIZE, EVENTS, LAG
from gateway.service.judge import Outcome, ask, judge
from gateway.service.ledger.sequences import QUIET_AFTER
from gateway.service.ledger.store import LedgerStore
from gateway.service.verdict import Verdict, authenticate
from gateway.streaming.access import KafkaAccess
from gateway.streaming.process import Batch, ConsumerProcess, Incoming
from gateway.streaming.topics import Topics

log = structlog.get_logger("crg.gateway")

__all__ = ["Gateway", "Incoming"]


def report(outcome: Outcome) -> None:
    """A batch's verdicts and alerts in the log and the metrics."""
    decisions = log.bind()  # bound once per batch, not once per verdict
    tally: dict[tuple[str, str], int] = {}  # verdicts by outcome and reason
    for msg, verdict in outcome.verdicts:
        reason = verdict.reason.value if verdict.reason else ""
        tally[verdict.outcome, reason] = tally.get((verdict.outcome, reason), 0) + 1
        for alert in verdict.alerts:
            ALERTS.labels(str(alert["alert"])).inc()
        event = verdict.event
        decisions.info(
            "gateway.verdict",
            verdict=verdict.outcome,
            reason=reason or None,
            event_id=event.event_id if event else None,
            registry=event.registry_id if event else None,
            source=msg.source,
        )
    for alert in outcome.gaps:
        ALERTS.labels(str(alert["alert"])).inc()
        decisions.warning("gateway.sequence_gap", **alert)
    for (outcome_, reason), n in tally.items():
        EVENTS.labels(outcome_, reason).inc(n)


class Gateway(ConsumerProcess[RegistryEvent | Verdict]):
    name = "crg-gateway"

    def __init__(
        self,
        *,
        kafka: KafkaAccess | str,
        ledger: LedgerStore,
        keys: KeyRing | Callable[[], KeyRing],
        codec: SingleObjectCodec,
        topics: Topics,
        idempotence: bool = False,
        max_batch: int = 2000,
        quiet_after: float = QUIET_AFTER,
        group_id: str | None = None,
        outputs: Topics | None = None,
        attester: Attester | None = None,
    ) -> None:
        super().__init__(
            kafka=kafka,
            store=ledger,
            topic=topics.raw,
            group_id=topics.group("gateway") if group_id is None else group_id,
            topics=topics,
            outputs=outputs,
            idempotence=idempotence,
            max_batch=max_batch,
        )
        self.ledger = ledger
        #: seconds of a registry being read elsewhere after which a partition that
        #: delivered none of its events stops holding its sequence check back
        #: (gateway/service/ledger/sequences.py)
        self.quiet_after = quiet_after
        self._keys = keys
        self.codec = codec
        #: signs each verdict (gateway/contract/attestation.py); None: verdicts unattested,
        #: which every consumer of the verified topic refuses
        self.attester = attester

    def topic_partitions(self) -> list[int]:
        """Every partition of the raw topic, whoever owns it (from the client's metadata)."""
        known = self.consumer.partitions_for_topic(self.topic) if self.consumer else None
        return sorted(known or ())

    def keys(self) -> KeyRing:
        return self._keys() if callable(self._keys) else self._keys

    def prepare(self, messages: list[Incoming]) -> list[RegistryEvent | Verdict]:
        keys = self.keys()
        return [authenticate(msg, keys, self.codec) for msg in messages]

    def handle(self, items: list[tuple[Incoming, RegistryEvent | Verdict]]) -> dict[str, int]:
        """Read the batch's snapshot, judge it in memory, record the outcome."""
        asked = ask(items, time.time(), self.topic_partitions(), self.quiet_after)
        outcome = judge(items, self.ledger.snapshot(asked), self.topics, self.attester)
        self.ledger.record(outcome)
        report(outcome)
        return outcome.counts()

    def batch_done(self, batch: Batch[RegistryEvent | Verdict], counts: dict[str, int]) -> None:
        BATCH_SECONDS.observe(time.perf_counter() - batch.started)
        BATCH_SIZE.observe(len(batch.incoming))
        assert self.consumer is not None
        for tp, position in batch.next_offsets.items():
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                LAG.labels(str(tp.partition)).set(max(highwater - position, 0))
