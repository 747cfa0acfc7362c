"""Verra's public VCU export (``transactions.csv``) turned into registry events.

The export lists every sub-block of an issuance batch as its own row: retired or
cancelled sub-blocks carry a ``Retirement/Cancellation Date``, the rest are still
active. We rebuild one ``UnitsIssued`` per contiguous run of a batch's rows (the
batch id is the serial's first field) and one ``UnitsRetired`` per retired row.

What the export does not carry, and what we do about it:
- account ids: units are held in ``verra/projects/<ID>/proponent``;
- whether a row was retired or cancelled: all are read as retirements;
- letters of authorization and first-transfer definitions: Article 6 labels carry
  the host Party and the authorized uses named in ``Additional Certifications``,
  and leave the rest null;
- the project's Country/Area against the serial's country: the serial wins (unit level),
  and the difference is reported as a note;
- rows of a batch missing from the file: each contiguous run is its own issuance,
  so a partial export never claims units it does not show.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from gateway.contract.parties import party_from_alpha2, party_from_name
from gateway.publishing.sources import Draft, Problem, SourceItem

REGISTRY_ID = "verra"

SERIAL = re.compile(
    r"^(?P<batch>\d+)-(?P<start>\d+)-(?P<end>\d+)-(?P<rest>(?P<program>[A-Z]+)-(?P<unit>[A-Z0-9]+)"
    r"-\d+-[A-Z]+-(?P<country>[A-Z]{2})-\d+-(?P<project>\d+)-(?P<vs>\d{8})-(?P<ve>\d{8})-\d+)$"
)

RETIREMENT_PURPOSES = {
    "environmental benefit": "VOLUNTARY_CLAIM",
    "retirement for person or organization": "VOLUNTARY_CLAIM",
    "corporate emissions inventory accounting": "VOLUNTARY_CLAIM",
    "other": "OTHER",
    "": "UNSPECIFIED",
}

ARTICLE6_USES = {
    "ndc use": {"purpose": "NDC"},
    "intl mitigation purposes": {"purpose": "OIMP"},
    "other purposes": {"purpose": "OTHER_PURPOSES"},
}


def account_for(project_id: str) -> str:
    return f"verra/projects/{project_id}/proponent"


def _quantity(text: str) -> int:
    return int(text.replace(",", "").strip())


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text.strip())


def _midnight(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def label_for(text: str, host_party: str) -> dict[str, Any]:
    """One ``Additional Certifications`` entry as a Label in its JSON form."""
    if text.lower().startswith("article 6 authorized"):
        use_text = re.split(r"\s[–-]\s", text, maxsplit=1)[-1].strip().lower()
        use = ARTICLE6_USES.get(use_text, {"purpose": "OTHER_PURPOSES"})
        return {
            "kind": "ARTICLE6_AUTHORIZATION",
            "text": text,
            "host_party": host_party,
            "authorized_uses": [use],
        }
    if "corsia" in text.lower():
        return {"kind": "CORSIA_ELIGIBLE", "text": text}
    return {"kind": "OTHER", "text": text}


@dataclass(frozen=True)
class _Row:
    location: str
    batch: int
    start: int
    end: int
    serial_rest: str
    project_id: str
    host_party: str
    issuance: dict[str, Any]  # attributes shared by the whole batch
    retired: dict[str, Any] | None
    notes: tuple[str, ...] = ()


def _parse_row(number: int, row: dict[str, str]) -> _Row | Problem:
    location = f"row {number}"
    serial = (row.get("Serial Number") or "").strip()
    match = SERIAL.match(serial)
    if not match:
        return Problem(location, f"serial number {serial!r} is not in Verra's VCU format")
    start, end = int(match["start"]), int(match["end"])
    if start > end:
        return Problem(location, f"serial range {start}-{end} runs backwards")
    try:
        quantity = _quantity(row["Quantity Issued"])
    except (KeyError, ValueError):
        return Problem(location, f"Quantity Issued {row.get('Quantity Issued')!r} is not a number")
    if quantity != end - start + 1:
        return Problem(
            location,
            f"Quantity Issued {quantity} differs from the serial range size {end - start + 1}",
        )
    project_id = (row.get("ID") or "").strip()
    if project_id != match["project"]:
        return Problem(
            location, f"project ID {project_id!r} differs from the serial's {match['project']!r}"
        )
    host_party = party_from_alpha2(match["country"])
    if host_party is None:
        return Problem(location, f"serial country code {match['country']!r} is not ISO 3166-1")
    notes: tuple[str, ...] = ()
    named = party_from_name(row.get("Country/Area") or "")
    if named is not None and named != host_party:
        # Multi-country projects (e.g. 3432, SARA) list one Country/Area for the project,
        # while each serial names the country of its own units: the serial is unit-level.
        notes = (
            f"{location}: Country/Area {row.get('Country/Area')!r} ({named}) differs from the "
            f"serial's country {host_party}; host Party taken from the serial",
        )
    try:
        issued_on = _date(row["Issuance Date"])
        vintage_start, vintage_end = _date(row["Vintage Start"]), _date(row["Vintage End"])
        retired_text = (row.get("Retirement/Cancellation Date") or "").strip()
        retired_on = _date(retired_text) if retired_text else None
    except (KeyError, ValueError) as exc:
        return Problem(location, f"bad date: {exc}")
    certifications = [
        c.strip() for c in (row.get("Additional Certifications") or "").split(";") if c.strip()
    ]
    issuance = {
        "issued_on": issued_on,
        "vintage_start": vintage_start.isoformat(),
        "vintage_end": vintage_end.isoformat(),
        "unit_type": match["unit"],
        "project": {
            "project_id": project_id,
            "name": (row.get("Name") or "").strip() or None,
            "host_party": host_party,
            "methodology": (row.get("Methodology") or "").strip(),
            "sector": (row.get("Project Type") or "").strip() or None,
        },
        "labels": [label_for(c, host_party) for c in certifications],
    }
    retired = None
    if retired_on is not None:
        reason = (row.get("Retirement Reason") or "").strip()
        purpose = RETIREMENT_PURPOSES.get(reason.lower(), "OTHER")
        details = "; ".join(
            part
            for part in (
                reason if purpose == "OTHER" and reason.lower() != "other" else "",
                (row.get("Retirement Details") or "").strip(),
            )
            if part
        )
        retired = {
            "retired_on": retired_on,
            "serial": serial,
            "beneficiary": (row.get("Retirement Beneficiary") or "").strip() or None,
            "purpose": purpose,
            "details": details or None,
        }
    return _Row(
        location,
        int(match["batch"]),
        start,
        end,
        match["rest"],
        project_id,
        host_party,
        issuance,
        retired,
        notes,
    )


def _issuance_draft(run: list[_Row]) -> Draft:
    first, last = run[0], run[-1]
    attrs = dict(first.issuance)
    issued_on = attrs.pop("issued_on")
    serial = f"{first.batch}-{first.start}-{last.end}-{first.serial_rest}"
    fields = {
        "event_id": f"verra:issuance:{first.batch}:{first.start}-{last.end}",
        "registry_id": REGISTRY_ID,
        "project_id": first.project_id,
        "occurred_at": _midnight(issued_on),
        "payload": {
            "type": "UnitsIssued",
            **attrs,
            "serial_block": {"serial": serial, "start": first.start, "end": last.end},
            "quantity": last.end - first.start + 1,
            "account": account_for(first.project_id),
        },
    }
    location = first.location if len(run) == 1 else f"{first.location}..{len(run)} rows"
    notes = tuple(note for r in run for note in r.notes)
    return Draft(location, fields, tuple(r.location for r in run), notes)


def _retirement_draft(row: _Row) -> Draft:
    assert row.retired is not None
    r = row.retired
    fields = {
        "event_id": f"verra:retirement:{r['serial']}",
        "registry_id": REGISTRY_ID,
        "project_id": row.project_id,
        "occurred_at": _midnight(r["retired_on"]),
        "payload": {
            "type": "UnitsRetired",
            "serial_block": {"serial": r["serial"], "start": row.start, "end": row.end},
            "quantity": row.end - row.start + 1,
            "account": account_for(row.project_id),
            "beneficiary": r["beneficiary"],
            "purpose": r["purpose"],
            "details": r["details"],
            "retired_on": r["retired_on"].isoformat(),
        },
    }
    return Draft(row.location, fields, (row.location,), row.notes)


def read_verra(stream: TextIO) -> Iterator[SourceItem]:
    """Problems first (in row order), then issuances, then retirements, each in time order."""
    reader = csv.DictReader(stream)
    rows: list[_Row] = []
    problems: list[Problem] = []
    # csv line numbers: the header is line 1, so data row i is at line i + 1
    for number, raw in enumerate(reader, start=2):
        parsed = _parse_row(number, raw)
        (problems if isinstance(parsed, Problem) else rows).append(parsed)  # type: ignore[arg-type]

    by_batch: dict[int, list[_Row]] = {}
    for row in rows:
        by_batch.setdefault(row.batch, []).append(row)
    runs: list[list[_Row]] = []
    for batch_rows in by_batch.values():
        batch_rows.sort(key=lambda r: r.start)
        current: list[_Row] = []
        for row in batch_rows:
            if current and row.start <= current[-1].end:
                problems.append(
                    Problem(
                        row.location,
                        f"serial range {row.start}-{row.end} "
                        f"overlaps {current[-1].location} of batch {row.batch}",
                    )
                )
                continue
            if current and row.issuance != current[0].issuance:
                problems.append(
                    Problem(
                        row.location,
                        f"issuance details differ from "
                        f"{current[0].location} of the same batch {row.batch}",
                    )
                )
                continue
            if current and row.start != current[-1].end + 1:
                runs.append(current)
                current = []
            current.append(row)
        if current:
            runs.append(current)

    yield from sorted(problems, key=lambda p: int(p.location.split()[1]))
    accepted = [row for run in runs for row in run]
    runs.sort(key=lambda run: (run[0].issuance["issued_on"], run[0].batch, run[0].start))
    for run in runs:
        yield _issuance_draft(run)
    retired = sorted(
        (row for row in accepted if row.retired is not None),
        key=lambda row: (row.retired["retired_on"], row.batch, row.start),  # type: ignore[index]
    )
    for row in retired:
        yield _retirement_draft(row)
