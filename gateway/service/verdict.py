"""One raw message in, one verdict out: verify → decode → model → identity → ledger.

:func:`authenticate` needs no ledger and runs on every core; :func:`judge_authentic`
and :func:`route` run inside the batch's ledger transaction, so the ledger change, the
accepted id and sequence, the rejected record and the outbox entries commit together.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import ValidationError

from gateway.contract.codec import SingleObjectCodec
from gateway.contract.errors import ContractError
from gateway.contract.keys import KeyRing
from gateway.contract.message import Headers, verify_and_decode
from gateway.contract.models import RegistryEvent, UnitsIssued, describe_invalid
from gateway.contract.reasons import Reason
from gateway.service.identity import project_identity
from gateway.service.ledger.rules import Change, decide
from gateway.service.ledger.sequences import QUIET_AFTER, Mark, merge, missing, watermark
from gateway.service.ledger.store import LedgerStore
from gateway.streaming.process import Incoming
from gateway.streaming.topics import Topics

VERDICT_HEADERS = (
    "crg_verdict",
    "crg_reason",
    "crg_reason_message",
    "crg_ledger_position",
    "crg_source",
)


@dataclass
class Verdict:
    outcome: Literal["accepted", "rejected", "repeat"]
    reason: Reason | None = None
    message: str = ""
    event: RegistryEvent | None = None
    position: int | None = None
    alerts: list[dict[str, object]] = field(default_factory=list)


def own_headers(headers: Headers) -> list[tuple[str, bytes]]:
    """The sender's headers without any verdict headers it may have forged."""
    return [(k, v) for k, v in headers if k not in VERDICT_HEADERS]


def _vintage_overlap(a: tuple[str, str], b: tuple[str, str]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def now() -> str:
    """The time a batch is judged: every rejected record of the batch carries it."""
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def judge_event(event: RegistryEvent, sha: bytes, ledger: LedgerStore) -> Verdict:
    """The checks that need the ledger, for an authentic, well-formed event whose value
    has this SHA-256."""
    seen, holder = ledger.identity_clash(event.registry_id, event.event_id, event.sequence)
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
    ledger.apply(decision)
    return Verdict("accepted", None, "", event, None)


def read_ahead(events: list[RegistryEvent], ledger: LedgerStore) -> None:
    """Read set-wise what judging these events will ask the ledger (see
    :mod:`gateway.service.ledger.staged`): their serial blocks, ids and project identities."""
    ledger.read_ahead(
        ranges=(
            (e.registry_id, e.serial_block.series, e.serial_block.start, e.serial_block.end)
            for e in events
        ),
        identities=((e.registry_id, e.event_id, e.sequence) for e in events),
        project_identities=(
            identity
            for e in events
            if isinstance(e.payload, UnitsIssued)
            and (identity := _issuance_identity(e.payload)) is not None
        ),
    )


def _issuance_identity(p: UnitsIssued) -> str | None:
    return project_identity(p.project.host_party, p.project.name)


def cross_registry_alerts(event: RegistryEvent, ledger: LedgerStore) -> list[dict[str, object]]:
    p = event.payload
    if not isinstance(p, UnitsIssued):
        return []
    identity = _issuance_identity(p)
    if identity is None:
        return []
    vintage = (p.vintage_start.isoformat(), p.vintage_end.isoformat())
    alerts: list[dict[str, object]] = []
    for registry, project, v_start, v_end, other_event in ledger.issuances_of_identity(identity):
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
    ledger.record_issuance_identity(
        identity, event.registry_id, event.project_id, *vintage, event.event_id
    )
    return alerts


class SequencesRead:
    """A batch's authentic events by registry, for the gap check: per raw partition the
    highest number read, and the registry's lowest number and last message."""

    def __init__(self, now: float) -> None:
        self.now = now  # when the batch is judged: the time its marks are raised
        self.highs: dict[str, dict[int, int]] = {}
        self.lowest: dict[str, int] = {}
        self.last: dict[str, tuple[Incoming, RegistryEvent]] = {}

    def add(self, msg: Incoming, event: RegistryEvent) -> None:
        registry, n = event.registry_id, event.sequence
        highs = self.highs.setdefault(registry, {})
        highs[msg.partition] = max(n, highs.get(msg.partition, n))
        self.lowest[registry] = min(n, self.lowest.get(registry, n))
        self.last[registry] = (msg, event)

    def marks(self, registry: str) -> list[Mark]:
        return [Mark(p, high, self.now) for p, high in self.highs[registry].items()]


def sequence_gap_alerts(
    read: SequencesRead,
    ledger: LedgerStore,
    partitions: Iterable[int],
    quiet_after: float = QUIET_AFTER,
) -> list[tuple[Incoming, dict[str, object]]]:
    """Numbers a registry skipped, once every partition carrying its events has moved
    past them (:mod:`gateway.service.ledger.sequences`); each alert goes with the registry's last
    message of the batch. A gap never blocks.

    Numbers below the first one read of a registry are not checked. When the gateway
    first reads a registry, every partition of the raw topic gets a mark at 0: one not
    read yet (another member's, or behind) holds the watermark back until it delivers
    the registry's events or counts as quiet."""
    alerts: list[tuple[Incoming, dict[str, object]]] = []
    for registry in read.highs:
        checked = ledger.sequence_checked(registry)  # first: it locks the registry's row
        stored = ledger.sequence_marks(registry)
        if checked is None:
            checked = read.lowest[registry] - 1
            ledger.set_sequence_checked(registry, checked)
        if not stored:  # the batch's own partitions too: the client may not know the topic's
            stored = [Mark(p, 0, read.now) for p in sorted({*partitions, *read.highs[registry]})]
        active_at = max(m.raised_at for m in stored)  # when the registry was last read
        marks = merge(stored, read.marks(registry))
        ledger.set_sequence_marks(registry, marks)
        through = watermark(marks, active_at, quiet_after)
        if through <= checked:
            continue
        msg, event = read.last[registry]
        seen = ledger.sequences_seen(registry, checked, through)
        alerts += [
            (
                msg,
                {
                    "alert": "sequence_gap",
                    "registry_id": registry,
                    "missing_from": first,
                    "missing_to": last,
                    "checked_through": through,
                    "event_id": event.event_id,
                    "note": "every partition carrying the registry's events has delivered"
                    " a later number, or has carried none for a while",
                },
            )
            for first, last in missing(checked, through, seen)
        ]
        ledger.set_sequence_checked(registry, through)
    return alerts


def authenticate(msg: Incoming, keys: KeyRing, codec: SingleObjectCodec) -> RegistryEvent | Verdict:
    """The checks that need no ledger (signature, key, decoding, model): safe to run in
    parallel, outside the batch's transaction."""
    try:
        return verify_and_decode(msg.value, msg.headers, keys, codec)
    except ContractError as exc:
        return Verdict("rejected", Reason(exc.reason), str(exc))
    except ValidationError as exc:
        return Verdict("rejected", Reason.MODEL_INVALID, describe_invalid(exc))


def judge_authentic(msg: Incoming, event: RegistryEvent, ledger: LedgerStore) -> Verdict:
    """The ledger's part of the verdict, inside the batch's transaction."""
    sha = hashlib.sha256(msg.value).digest()
    verdict = judge_event(event, sha, ledger)
    if verdict.outcome == "accepted":
        verdict.position = ledger.record_accepted(
            event.registry_id, event.event_id, sha, event.sequence, msg.source
        )
        verdict.alerts = cross_registry_alerts(event, ledger)
    return verdict


def route(
    msg: Incoming, verdict: Verdict, topics: Topics, ledger: LedgerStore, received_at: str
) -> None:
    """Put the verdict's messages in the outbox (and a rejected record in the ledger)."""
    headers = own_headers(msg.headers)
    source = ("crg_source", msg.source.encode())
    if verdict.outcome == "accepted":
        ledger.outbox_add(
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
            ],
        )
    elif verdict.outcome == "rejected":
        assert verdict.reason is not None
        event = verdict.event
        ledger.record_rejected(
            registry_id=event.registry_id if event else None,
            event_id=event.event_id if event else None,
            reason=verdict.reason.value,
            message=verdict.message,
            value=msg.value,
            headers=headers,
            source=msg.source,
            received_at=received_at,
        )
        ledger.outbox_add(
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
            ],
        )
    for alert in verdict.alerts:
        route_alert(msg, alert, topics, ledger)


def route_alert(
    msg: Incoming, alert: dict[str, object], topics: Topics, ledger: LedgerStore
) -> None:
    """An alert in the outbox, as caused by ``msg``."""
    ledger.outbox_add(
        msg.partition,
        msg.offset,
        topics.alerts,
        msg.key,
        json.dumps(alert, sort_keys=True).encode(),
        [("content-type", b"application/json"), ("crg_alert", str(alert["alert"]).encode())],
    )
