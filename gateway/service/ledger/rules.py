"""The ledger rules: given an event and the blocks it touches, accept with a change or
reject with a reason. Pure: no I/O, so every rule is tested without a database.

- issuance: the range overlaps no block ever issued in that registry and series
  (blocks are only ever split, never deleted, so the blocks *are* the issuance history);
- transfer, retirement, cancellation: every unit exists, belongs to the event's project,
  is active and is held by the named account; a second retirement is double use;
- labels: the units exist and are active (a label never reaches units already retired
  or cancelled); an Article 6 authorization comes from the host Party of every block it
  covers; a revoked label must be on every unit (revoking stays possible on any units).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.contract.labels import label_identity, label_json
from gateway.contract.models import (
    AuthorizationLabelApplied,
    AuthorizationLabelRevoked,
    Label,
    LabelKind,
    RegistryEvent,
    UnitsCancelled,
    UnitsIssued,
    UnitsRetired,
    UnitsTransferred,
)
from gateway.contract.reasons import Reason
from gateway.ranges import split
from gateway.service.ledger.blocks import Block, Status


class LedgerView(Protocol):
    def overlapping(self, registry_id: str, series: str, start: int, end: int) -> list[Block]:
        """Blocks of that registry and series sharing at least one unit with the range,
        ordered by start."""
        ...


@dataclass(frozen=True)
class Change:
    """Replace ``remove`` by ``add``; they cover the same units except for an issuance."""

    remove: tuple[Block, ...]
    add: tuple[Block, ...]


@dataclass(frozen=True)
class Rejection:
    reason: Reason
    message: str


Decision = Change | Rejection


def _host_mismatch(labels: Sequence[Label], host_party: str) -> Rejection | None:
    for label in labels:
        if label.kind == LabelKind.ARTICLE6_AUTHORIZATION and label.host_party != host_party:
            return Rejection(
                Reason.LABEL_HOST_MISMATCH,
                f"Article 6 authorization by {label.host_party} on units of a project hosted by "
                f"{host_party}: only the host Party can authorize",
            )
    return None


def _issue(event: RegistryEvent, p: UnitsIssued, view: LedgerView) -> Decision:
    sb = p.serial_block
    clash = view.overlapping(event.registry_id, sb.series, sb.start, sb.end)
    if clash:
        first = clash[0]
        return Rejection(
            Reason.ISSUANCE_OVERLAP,
            f"units {sb.start}-{sb.end} overlap units {first.start}-{first.end} already issued "
            f"by {first.issued_by} (double issuance)",
        )
    mismatch = _host_mismatch(p.labels, p.project.host_party)
    if mismatch:
        return mismatch
    block = Block(
        registry_id=event.registry_id,
        series=sb.series,
        start=sb.start,
        end=sb.end,
        project_id=p.project.project_id,
        host_party=p.project.host_party,
        vintage=p.vintage,
        unit_type=p.unit_type,
        account=p.account,
        status=Status.ACTIVE,
        labels=tuple(sorted({label_json(label) for label in p.labels})),
        issued_by=event.event_id,
    )
    return Change(remove=(), add=(block,))


def _existing(event: RegistryEvent, view: LedgerView) -> list[Block] | Rejection:
    sb = event.serial_block
    blocks = view.overlapping(event.registry_id, sb.series, sb.start, sb.end)
    found = sum(min(b.end, sb.end) - max(b.start, sb.start) + 1 for b in blocks)
    if found < sb.size:
        return Rejection(
            Reason.UNITS_NOT_FOUND,
            f"{sb.size - found} of the {sb.size} units {sb.start}-{sb.end} were never issued",
        )
    others = sorted({b.project_id for b in blocks} - {event.project_id})
    if others:
        return Rejection(
            Reason.PROJECT_MISMATCH,
            f"units {sb.start}-{sb.end} belong to project {', '.join(others)}, "
            f"not {event.project_id}",
        )
    return blocks


def _active(blocks: list[Block], verb: str) -> Rejection | None:
    """Every unit is active: none retired or cancelled (used for a claim, or gone)."""
    statuses = {b.status for b in blocks}
    if statuses != {Status.ACTIVE}:
        if Status.ACTIVE in statuses:
            inactive = sorted(s.value for s in statuses - {Status.ACTIVE})
            return Rejection(
                Reason.UNITS_MIXED_STATE,
                f"the range mixes active units with {', '.join(inactive)} ones; cannot {verb}",
            )
        state = ", ".join(sorted(s.value for s in statuses))
        double_use = " (double use)" if verb in ("retire", "cancel") else ""
        return Rejection(
            Reason.UNITS_NOT_ACTIVE, f"the units are {state}; cannot {verb}{double_use}"
        )
    return None


def _movable(blocks: list[Block], account: str, verb: str) -> Rejection | None:
    inactive = _active(blocks, verb)
    if inactive:
        return inactive
    holders = sorted({b.account for b in blocks} - {account})
    if holders:
        return Rejection(
            Reason.UNITS_NOT_HELD,
            f"units are held by {', '.join(holders)}, not by {account}",
        )
    return None


def _split(blocks: list[Block], start: int, end: int, update: Callable[[Block], Block]) -> Change:
    removed, added = split(blocks, start, end, update)
    return Change(remove=tuple(removed), add=tuple(added))


def decide(event: RegistryEvent, view: LedgerView) -> Decision:
    """The ledger's verdict on one (authentic, well-formed) event."""
    p = event.payload
    if isinstance(p, UnitsIssued):
        return _issue(event, p, view)
    blocks = _existing(event, view)
    if isinstance(blocks, Rejection):
        return blocks
    sb = p.serial_block
    if isinstance(p, UnitsTransferred):
        refused = _movable(blocks, p.from_account, "transfer")
        if refused:
            return refused
        to = p.to_account
        return _split(blocks, sb.start, sb.end, lambda b: b.changed(account=to))
    if isinstance(p, UnitsRetired | UnitsCancelled):
        verb = "retire" if isinstance(p, UnitsRetired) else "cancel"
        refused = _movable(blocks, p.account, verb)
        if refused:
            return refused
        status = Status.RETIRED if isinstance(p, UnitsRetired) else Status.CANCELLED
        return _split(blocks, sb.start, sb.end, lambda b: b.changed(status=status))
    if isinstance(p, AuthorizationLabelApplied):
        # units already used for a claim (or cancelled) never become authorized afterwards
        inactive = _active(blocks, "label")
        if inactive:
            return inactive
        # one serial range may hold units of several host Parties: every block must match
        for host in sorted({b.host_party for b in blocks}):
            mismatch = _host_mismatch([p.label], host)
            if mismatch:
                return mismatch
        text = label_json(p.label)
        return _split(blocks, sb.start, sb.end, lambda b: b.with_label(text))
    assert isinstance(p, AuthorizationLabelRevoked)
    identity = label_identity(p.label)
    missing = [b for b in blocks if not b.has_label(identity)]
    if missing:
        return Rejection(
            Reason.LABEL_NOT_PRESENT,
            f"label {p.label.text!r} is not on units {missing[0].start}-{missing[0].end}",
        )
    return _split(blocks, sb.start, sb.end, lambda b: b.without_label(identity))
