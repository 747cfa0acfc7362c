"""Sign events from a source and send them to the raw topic (acks=all).

Every source record ends in exactly one of: sent, already published (skipped),
invalid (with its location and reason), or failed to send. The report's counts
add up to what was read.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaProducer
from pydantic import ValidationError
from tqdm import tqdm

from gateway.contract.message import EventSigner, SignedMessage
from gateway.contract.models import RegistryEvent, describe_invalid
from gateway.publishing.journal import PublishJournal
from gateway.publishing.sources import Draft, Problem, SourceItem
from gateway.streaming.access import KafkaAccess

log = structlog.get_logger(__name__)


class StopPublishing(Exception):
    """Raised with ``stop_on_error`` at the first invalid record."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(f"{problem.location}: {problem.message}")
        self.problem = problem


@dataclass
class PublishReport:
    sent: Counter[str] = field(default_factory=Counter)
    already_published: int = 0
    invalid: list[Problem] = field(default_factory=list)
    failed: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stopped: bool = False

    @property
    def total_sent(self) -> int:
        return sum(self.sent.values())

    def lines(self) -> list[str]:
        out = [
            f"sent: {self.total_sent}"
            + (
                " (" + ", ".join(f"{k} {v}" for k, v in sorted(self.sent.items())) + ")"
                if self.sent
                else ""
            ),
            f"already published (skipped): {self.already_published}",
            f"invalid: {len(self.invalid)}",
            f"failed to send: {len(self.failed)}",
        ]
        out += [f"  invalid {p.location}: {p.message}" for p in self.invalid]
        out += [f"  failed {p.location}: {p.message}" for p in self.failed]
        out += [f"  note {n}" for n in self.notes]
        if self.stopped:
            out.append("stopped at the first invalid record (--stop-on-error)")
        return out


class Publisher:
    def __init__(
        self,
        signer: EventSigner,
        registry_id: str,
        journal: PublishJournal,
        producer: AIOKafkaProducer,
        topic: str,
        *,
        resend: bool = False,
        stop_on_error: bool = False,
        batch_size: int = 500,
    ) -> None:
        self.signer = signer
        self.registry_id = registry_id
        self.journal = journal
        self.producer = producer
        self.topic = topic
        self.resend = resend
        self.stop_on_error = stop_on_error
        self.batch_size = batch_size

    def _problem(self, report: PublishReport, problem: Problem) -> None:
        report.invalid.append(problem)
        log.warning("publish.invalid", location=problem.location, reason=problem.message)
        if self.stop_on_error:
            report.stopped = True
            raise StopPublishing(problem)

    def _prepare(
        self, item: Draft, next_sequence: int, report: PublishReport
    ) -> tuple[RegistryEvent, SignedMessage] | None:
        """The event and its signed message, or None (skipped or reported invalid)."""
        fields = dict(item.fields)
        fields.setdefault("registry_id", self.registry_id)
        if fields["registry_id"] != self.registry_id:
            self._problem(
                report,
                Problem(
                    item.location,
                    f"registry_id {fields['registry_id']!r}"
                    f" is not the signing key's registry {self.registry_id!r}",
                ),
            )
            return None
        event_id = fields.get("event_id")
        known = (
            self.journal.lookup(self.registry_id, event_id) if isinstance(event_id, str) else None
        )
        if known is not None:
            sequence, acked = known
            if acked and not self.resend:
                report.already_published += 1
                return None
            fields["sequence"] = sequence
        if known is None and "sequence" not in fields:
            fields["sequence"] = next_sequence
        try:
            event = RegistryEvent.model_validate(fields)
        except ValidationError as exc:
            self._problem(report, Problem(item.location, describe_invalid(exc, limit=20)))
            return None
        try:
            message = self.signer.sign_event(event)
        except Exception as exc:  # e.g. over the size limit
            self._problem(report, Problem(item.location, str(exc)))
            return None
        return event, message

    async def publish(
        self, items: Iterable[SourceItem], *, progress: bool = False
    ) -> PublishReport:
        report = PublishReport()
        bar = tqdm(total=None, unit="ev", disable=not progress, file=sys.stderr, leave=False)
        batch: list[tuple[Draft, RegistryEvent, SignedMessage]] = []
        next_sequence = self.journal.last_sequence(self.registry_id) + 1
        try:
            for item in items:
                if isinstance(item, Problem):
                    self._problem(report, item)
                    continue
                report.notes.extend(item.notes)
                prepared = self._prepare(item, next_sequence, report)
                if prepared is None:
                    continue
                event, message = prepared
                next_sequence = max(next_sequence, event.sequence + 1)
                batch.append((item, event, message))
                if len(batch) >= self.batch_size:
                    await self._send(batch, report)
                    bar.update(len(batch))
                    batch = []
        except StopPublishing:
            pass
        finally:
            if batch:
                await self._send(batch, report)
                bar.update(len(batch))
            bar.close()
        return report

    async def _send(
        self, batch: list[tuple[Draft, RegistryEvent, SignedMessage]], report: PublishReport
    ) -> None:
        self.journal.reserve([(e.registry_id, e.event_id, e.sequence) for _, e, _ in batch])
        futures = [
            await self.producer.send(self.topic, m.value, key=m.key, headers=list(m.headers))
            for _, _, m in batch
        ]
        results = await asyncio.gather(*futures, return_exceptions=True)
        acked = []
        for (item, event, _), result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                report.failed.append(Problem(item.location, f"{event.event_id}: {result!r}"))
                log.error("publish.failed", event_id=event.event_id, error=repr(result))
            else:
                acked.append((event.registry_id, event.event_id))
                report.sent[event.event_type] += 1
        self.journal.mark_acked(acked)


def make_producer(
    kafka: KafkaAccess | str,
    *,
    idempotence: bool,
    client_id: str = "crg-publish",
    request_timeout_ms: int = 30_000,
) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **KafkaAccess.of(kafka).options(),
        client_id=client_id,
        acks="all",
        enable_idempotence=idempotence,
        linger_ms=5,
        request_timeout_ms=request_timeout_ms,
    )
