"""Reconciliation, the ITL's way brought up to date: compare the gateway's ledger with a
registry's own export and with a Party's ITMO ledger — totals per registry, project and
vintage, then every block that differs. Pure: the inputs are lists, the output rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.contract.models import RegistryEvent, UnitsCancelled, UnitsIssued, UnitsRetired
from gateway.service.ledger.blocks import Block, Status

Key = tuple[str, str, int]  # registry, project, vintage


@dataclass(frozen=True)
class Totals:
    issued: int = 0
    retired: int = 0
    cancelled: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.issued + other.issued,
            self.retired + other.retired,
            self.cancelled + other.cancelled,
        )


@dataclass(frozen=True)
class Difference:
    where: str  # e.g. "verra / 4150 / 2024" or "verra units 1000-1099"
    ledger: str
    other: str


def ledger_totals(blocks: Iterable[Block]) -> dict[Key, Totals]:
    out: dict[Key, Totals] = defaultdict(Totals)
    for b in blocks:
        out[(b.registry_id, b.project_id, b.vintage)] += Totals(
            b.size,
            b.size if b.status == Status.RETIRED else 0,
            b.size if b.status == Status.CANCELLED else 0,
        )
    return dict(out)


def export_totals(events: Iterable[RegistryEvent]) -> dict[Key, Totals]:
    """Totals as the registry's own export states them (vintage from its issuances)."""
    events = list(events)
    vintage_of: dict[tuple[str, str], list[tuple[int, int, int]]] = defaultdict(list)
    out: dict[Key, Totals] = defaultdict(Totals)
    for e in events:
        if isinstance(e.payload, UnitsIssued):
            sb = e.payload.serial_block
            vintage_of[(e.registry_id, sb.series)].append((sb.start, sb.end, e.payload.vintage))
            out[(e.registry_id, e.project_id, e.payload.vintage)] += Totals(issued=sb.size)
    for e in events:
        p = e.payload
        if isinstance(p, UnitsRetired | UnitsCancelled):
            sb = p.serial_block
            vintage = next(
                (v for lo, hi, v in vintage_of[(e.registry_id, sb.series)] if lo <= sb.start <= hi),
                0,
            )
            retired = isinstance(p, UnitsRetired)
            out[(e.registry_id, e.project_id, vintage)] += Totals(
                retired=sb.size if retired else 0, cancelled=0 if retired else sb.size
            )
    return dict(out)


def compare_totals(ledger: dict[Key, Totals], other: dict[Key, Totals]) -> list[Difference]:
    out = []
    for key in sorted(set(ledger) | set(other)):
        a, b = ledger.get(key, Totals()), other.get(key, Totals())
        if a != b:
            out.append(Difference(" / ".join(map(str, key)), _fmt(a), _fmt(b)))
    return out


def _fmt(t: Totals) -> str:
    return f"issued {t.issued:,}, retired {t.retired:,}, cancelled {t.cancelled:,}"


def _status_at(
    blocks: Sequence[Block], registry: str, series: str, start: int, end: int
) -> dict[str, int]:
    found: dict[str, int] = defaultdict(int)
    for b in blocks:
        if (b.registry_id, b.series) == (registry, series) and b.start <= end and b.end >= start:
            found[b.status.value] += min(b.end, end) - max(b.start, start) + 1
    return dict(found)


def export_blocks(blocks: Sequence[Block], events: Iterable[RegistryEvent]) -> list[Difference]:
    """Every serial block of the export whose units the ledger has otherwise: issued
    ranges not (all) in the ledger, retired ranges not retired there."""
    out = []
    for e in events:
        p = e.payload
        if not isinstance(p, UnitsIssued | UnitsRetired | UnitsCancelled):
            continue
        sb = p.serial_block
        found = _status_at(blocks, e.registry_id, sb.series, sb.start, sb.end)
        want = (
            "issued"
            if isinstance(p, UnitsIssued)
            else "retired"
            if isinstance(p, UnitsRetired)
            else "cancelled"
        )
        held = sum(found.values()) if want == "issued" else found.get(want, 0)
        if held != sb.size:
            where = f"{e.registry_id} units {sb.start}-{sb.end} ({e.event_id})"
            got = ", ".join(f"{k} {v:,}" for k, v in sorted(found.items())) or "absent"
            out.append(Difference(where, got, f"{want} {sb.size:,}"))
    return out


def itmo_blocks(
    blocks: Sequence[Block], article6: Iterable[tuple[str, str, int, int, str]]
) -> list[Difference]:
    """A Party's ITMO blocks (registry, series, first unit, last unit, state) against the
    ledger: used or cancelled ITMOs must be retired or cancelled there, live ones active."""
    out = []
    for registry, series, start, end, state in article6:
        found = _status_at(blocks, registry, series, start, end)
        if state in ("AUTHORIZED", "FIRST_TRANSFERRED"):
            matching = found.get("active", 0)
        elif state in ("USED", "CANCELLED"):
            matching = found.get("retired", 0) + found.get("cancelled", 0)
        else:  # revoked: no longer ITMOs, the units may be in any state
            matching = sum(found.values())
        if matching != end - start + 1:
            got = ", ".join(f"{k} {v:,}" for k, v in sorted(found.items())) or "absent"
            out.append(Difference(f"{registry} units {start}-{end}", got, f"ITMO state {state}"))
    return out
