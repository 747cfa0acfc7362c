"""The gateway's verdicts on one batch, as a value.

:func:`judge` takes a batch of authenticated messages and a :class:`Snapshot` of the
ledger — everything the batch may touch, read in a few set-wise queries before it is
judged (:meth:`gateway.service.ledger.store.LedgerStore.snapshot`) — and returns an
:class:`Outcome`: each message's verdict, the ledger's net block changes, the accepted
and rejected rows, the registries' sequence state and the messages for the outbox.
Pure: no I/O, so a batch's outcome can be printed, compared and tested without a
database. The ledger's recorder writes it in the batch's one transaction
(:meth:`~gateway.service.ledger.store.LedgerStore.record`).

The events of a batch are judged one after the other, each against the ledger as the
events before it left it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from gateway.contract.attestation import Attester, Claim
from gateway.contract.models import RegistryEvent, UnitsIssued
from gateway.contract.reasons import Reason
from gateway.contract.time import utc_text
from gateway.ranges import BlockKey, Range, StagedBlocks
from gateway.service.identity import project_identity
from gateway.service.ledger.blocks import Block
from gateway.service.ledger.rules import Change, decide
from gateway.service.ledger.sequences import (
    QUIET_AFTER,
    Mark,
    SequencesRead,
    Window,
    advance,
    missing,
)
from gateway.service.ledger.staged import Issuance, StagedIdentities, StagedIssuances
from gateway.service.verdict import Verdict, own_headers
from gateway.storage.outbox import Headers
from gateway.streaming.process import Incoming
from gateway.streaming.topics import Topics, key_partition

Item = tuple[Incoming, RegistryEvent | Verdict]  # a message and what authentication made of it
#: an accepted event: registry, event id, SHA-256, ledger position, sequence
Stored = tuple[str, str, bytes, int, int]


@dataclass(frozen=True)
class Asked:
    """What judging a batch may ask the ledger (:func:`ask`)."""

    ranges: tuple[Range, ...]  # every serial block named
    identities: tuple[tuple[str, str, int], ...]  # (registry, event id, sequence)
    project_identities: tuple[str, ...]  # of the issuances (cross-registry check)
    sequences: SequencesRead  # every authentic event's number, by registry and partition
    partitions: tuple[int, ...]  # of the raw topic, as far as the client knows them
    quiet_after: float
    now: float  # Unix seconds: when the batch is judged

    @property
    def accepts(self) -> int:
        """At most this many events are accepted: the ledger positions to reserve."""
        return len(self.identities)


def ask(
    items: Sequence[Item],
    now: float,
    partitions: Sequence[int] = (),
    quiet_after: float = QUIET_AFTER,
) -> Asked:
    events = [(msg, e) for msg, e in items if not isinstance(e, Verdict)]
    sequences = SequencesRead(now)
    for msg, e in events:
        sequences.add(e.registry_id, msg.partition, e.sequence)
    return Asked(
        ranges=tuple(
            dict.fromkeys(
                (e.registry_id, e.serial_block.series, e.serial_block.start, e.serial_block.end)
                for _, e in events
            )
        ),
        identities=tuple(dict.fromkeys((e.registry_id, e.event_id, e.sequence) for _, e in events)),
        project_identities=tuple(
            dict.fromkeys(i for _, e in events if (i := _issuance_identity(e)) is not None)
        ),
        sequences=sequences,
        partitions=tuple(partitions),
        quiet_after=quiet_after,
        now=now,
    )


def windows_of(
    asked: Asked,
    checked: dict[str, int],
    marks: dict[str, list[Mark]],
    seen: Callable[[str, int, int], set[int]],
) -> dict[str, Window]:
    """Each registry's sequence window after the batch, from its stored checked mark and
    marks; ``seen(registry, after, through)`` reads the stored numbers a window settles."""
    windows = {}
    for registry in sorted(asked.sequences.highs):
        w = advance(
            checked.get(registry),
            marks.get(registry, []),
            asked.sequences,
            registry,
            asked.partitions,
            asked.quiet_after,
        )
        if w.settles:
            w = replace(w, seen=frozenset(seen(registry, w.checked, w.through)))
        windows[registry] = w
    return windows


@dataclass(frozen=True)
class Snapshot:
    """What the ledger holds that a batch may touch, read before it is judged."""

    asked: Asked
    blocks: tuple[Block, ...]  # every stored block sharing a unit with an asked range
    accepted: tuple[Stored, ...]  # stored accepted events holding an asked id or sequence
    issuances: dict[str, list[Issuance]]  # stored issuances of each asked project identity
    windows: dict[str, Window]  # per registry of the batch
    positions: tuple[int, ...]  # ledger positions reserved for this batch, ascending


class Outgoing(NamedTuple):
    """A message for the outbox, caused by the consumed message at partition/offset."""

    partition: int
    offset: int
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers


class Rejected(NamedTuple):
    """A rejected event, as the ledger keeps it for operators."""

    registry_id: str | None
    event_id: str | None
    reason: str
    message: str
    value: bytes
    headers: Headers
    source: str
    received_at: str


@dataclass
class Outcome:
    """A batch's verdicts and everything the ledger writes for them."""

    verdicts: list[tuple[Incoming, Verdict]] = field(default_factory=list)
    deleted: list[BlockKey] = field(default_factory=list)  # stored blocks replaced
    added: list[Block] = field(default_factory=list)
    #: (position, registry, event id, SHA-256, sequence, source)
    accepted: list[tuple[int, str, str, bytes, int, str]] = field(default_factory=list)
    #: (identity, registry, project, vintage start, vintage end, event id)
    issuances: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    refused: list[tuple[str, int]] = field(default_factory=list)  # numbers refused events used
    windows: dict[str, Window] = field(default_factory=dict)  # the sequence state after it
    gaps: list[dict[str, object]] = field(default_factory=list)  # sequence-gap alerts
    outbox: list[Outgoing] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, v in self.verdicts:
            counts[v.outcome] = counts.get(v.outcome, 0) + 1
        return counts


def _not_in_snapshot(ranges: list[Range]) -> list[Block]:
    raise LookupError(f"ranges {ranges[:3]} were not asked for: the snapshot lacks them")


class _Ledger:
    """The snapshot as the batch's events change it."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.blocks: StagedBlocks[Block] = StagedBlocks()
        self.blocks.read(snapshot.asked.ranges, lambda _: snapshot.blocks)
        self.identities = StagedIdentities()
        self.identities.load(snapshot.asked.identities, snapshot.accepted)
        self.issuances = StagedIssuances()
        self.issuances.load(
            snapshot.asked.project_identities,
            ((i, x) for i, found in snapshot.issuances.items() for x in found),
        )
        self.positions = iter(snapshot.positions)

    def overlapping(self, registry_id: str, series: str, start: int, end: int) -> list[Block]:
        return self.blocks.overlapping((registry_id, series, start, end), _not_in_snapshot)


def judge(
    items: Sequence[Item],
    snapshot: Snapshot,
    topics: Topics,
    attester: Attester | None = None,
) -> Outcome:
    """Every message's verdict, and what the ledger writes for the batch; with an
    ``attester``, each verdict's message carries the gateway's attestation."""
    ledger, out = _Ledger(snapshot), Outcome()
    received_at = utc_text(snapshot.asked.now)
    count = len(snapshot.asked.partitions)
    for msg, first in items:
        verdict = (
            first if isinstance(first, Verdict) else _judge_authentic(msg, first, ledger, count)
        )
        if verdict.outcome == "rejected" and verdict.event is not None:
            out.refused.append((verdict.event.registry_id, verdict.event.sequence))
        out.verdicts.append((msg, verdict))
        _route(msg, verdict, topics, received_at, out, attester)
    out.deleted = list(ledger.blocks.deleted)
    out.added = list(ledger.blocks.added.values())
    out.accepted = ledger.identities.rows
    out.issuances = ledger.issuances.rows
    for registry, window in snapshot.windows.items():
        _settle(registry, window, items, ledger, out, topics)
    return out


def _judge_authentic(
    msg: Incoming, event: RegistryEvent, ledger: _Ledger, partitions: int
) -> Verdict:
    """The verdict on an authentic, well-formed event: its place, then the ledger's part.
    ``partitions``: of the raw topic (0 when not known: the place is not checked)."""
    if msg.key is not None and partitions:
        expected = key_partition(msg.key, partitions)
        if msg.partition != expected:
            return Verdict(
                "rejected",
                Reason.PARTITION_NOT_OF_KEY,
                f"on partition {msg.partition}, but its key's is {expected} of {partitions}"
                " (murmur2, the Java client's partitioner): the publisher partitions otherwise",
                event,
            )
    sha = hashlib.sha256(msg.value).digest()
    seen, holder = ledger.identities.clash(event.registry_id, event.event_id, event.sequence)
    if seen is not None:
        if seen[0] == sha:
            return Verdict("repeat", Reason.DUPLICATE_REPEAT, "identical repeat", event, seen[1])
        return Verdict(
            "rejected",
            Reason.EVENT_ID_CONFLICT,
            f"event id {event.event_id} was accepted before with different bytes",
            event,
        )
    if holder is not None:
        return Verdict(
            "rejected",
            Reason.SEQUENCE_REPEAT,
            f"sequence {event.sequence} was already used by event {holder}",
            event,
        )
    decision = decide(event, ledger)
    if not isinstance(decision, Change):
        return Verdict("rejected", decision.reason, decision.message, event)
    ledger.blocks.apply(decision.remove, decision.add)
    position = next(ledger.positions)
    ledger.identities.accept(
        position, event.registry_id, event.event_id, sha, event.sequence, msg.source
    )
    return Verdict("accepted", None, "", event, position, _cross_registry_alerts(event, ledger))


def _issuance_identity(event: RegistryEvent) -> str | None:
    p = event.payload
    if not isinstance(p, UnitsIssued):
        return None
    return project_identity(p.project.host_party, p.project.name)


def _vintage_overlap(a: tuple[str, str], b: tuple[str, str]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _cross_registry_alerts(event: RegistryEvent, ledger: _Ledger) -> list[dict[str, object]]:
    """An issuance of a project another registry issued for overlapping vintages."""
    identity = _issuance_identity(event)
    if identity is None:
        return []
    p = event.payload
    assert isinstance(p, UnitsIssued)
    vintage = (p.vintage_start.isoformat(), p.vintage_end.isoformat())
    alerts: list[dict[str, object]] = []
    for registry, project, v_start, v_end, other_event in ledger.issuances.by_identity[identity]:
        if registry != event.registry_id and _vintage_overlap(vintage, (v_start, v_end)):
            alerts.append(
                {
                    "alert": "possible_double_issuance",
                    "project_identity": identity,
                    "registry_id": event.registry_id,
                    "project_id": event.project_id,
                    "event_id": event.event_id,
                    "vintage": list(vintage),
                    "other_registry_id": registry,
                    "other_project_id": project,
                    "other_event_id": other_event,
                    "other_vintage": [v_start, v_end],
                }
            )
    ledger.issuances.record(
        identity, (event.registry_id, event.project_id, *vintage, event.event_id)
    )
    return alerts


def _settle(
    registry: str,
    window: Window,
    items: Sequence[Item],
    ledger: _Ledger,
    out: Outcome,
    topics: Topics,
) -> None:
    """Numbers of the registry the batch shows skipped: once every partition carrying its
    events has moved past them (:mod:`gateway.service.ledger.sequences`); each alert goes
    with the registry's last message of the batch. A gap never blocks."""
    out.windows[registry] = window
    if not window.settles:
        return
    after, through = window.checked, window.through
    seen = {
        *window.seen,
        *ledger.identities.held(registry, after, through),
        *(n for r, n in out.refused if r == registry and after < n <= through),
    }
    msg, event = next(
        (m, e)
        for m, e in reversed(items)
        if isinstance(e, RegistryEvent) and e.registry_id == registry
    )
    for first, last in missing(after, through, seen):
        alert: dict[str, object] = {
            "alert": "sequence_gap",
            "registry_id": registry,
            "missing_from": first,
            "missing_to": last,
            "checked_through": through,
            "event_id": event.event_id,
            "note": "every partition carrying the registry's events has delivered"
            " a later number, or has carried none for a while",
        }
        out.gaps.append(alert)
        out.outbox.append(_alert_message(msg, alert, topics))


def _route(
    msg: Incoming,
    verdict: Verdict,
    topics: Topics,
    received_at: str,
    out: Outcome,
    attester: Attester | None,
) -> None:
    """The verdict's messages for the outbox (and a rejected event's record)."""
    headers = own_headers(msg.headers)
    source = ("crg_source", msg.source.encode())
    event = verdict.event

    def attested(topic: str) -> list[tuple[str, bytes]]:
        if attester is None:
            return []
        return attester.headers(
            Claim(
                msg.value,
                verdict.outcome,
                verdict.position if verdict.outcome == "accepted" else None,
                event.registry_id if event else None,
                event.event_id if event else None,
                topic,
                received_at,
            )
        )

    if verdict.outcome == "accepted":
        out.outbox.append(
            Outgoing(
                msg.partition,
                msg.offset,
                topics.verified,
                msg.key,
                msg.value,
                [
                    *headers,
                    ("crg_verdict", b"accepted"),
                    ("crg_ledger_position", str(verdict.position).encode()),
                    source,
                    *attested(topics.verified),
                ],
            )
        )
    elif verdict.outcome == "rejected":
        assert verdict.reason is not None
        out.rejected.append(
            Rejected(
                event.registry_id if event else None,
                event.event_id if event else None,
                verdict.reason.value,
                verdict.message,
                msg.value,
                headers,
                msg.source,
                received_at,
            )
        )
        out.outbox.append(
            Outgoing(
                msg.partition,
                msg.offset,
                topics.rejected,
                msg.key,
                msg.value,
                [
                    *headers,
                    ("crg_verdict", b"rejected"),
                    ("crg_reason", verdict.reason.value.encode()),
                    ("crg_reason_message", verdict.message[:1000].encode()),
                    source,
                    *attested(topics.rejected),
                ],
            )
        )
    out.outbox.extend(_alert_message(msg, alert, topics) for alert in verdict.alerts)


def _alert_message(msg: Incoming, alert: dict[str, object], topics: Topics) -> Outgoing:
    """An alert for the alerts topic, as caused by ``msg``."""
    return Outgoing(
        msg.partition,
        msg.offset,
        topics.alerts,
        msg.key,
        json.dumps(alert, sort_keys=True).encode(),
        [("content-type", b"application/json"), ("crg_alert", str(alert["alert"]).encode())],
    )
