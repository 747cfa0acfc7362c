"""Valid events of every type, written out by hand, and hypothesis strategies for them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

from gateway.contract.models import RegistryEvent

PARTIES = ["GHA", "CHE", "RWA", "BRA", "SGP", "JPN", "EUU", "PRY", "KEN", "SWE"]


def envelope(payload: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    fields = {
        "event_id": "evt-1",
        "registry_id": "verra",
        "project_id": "4150",
        "sequence": 1,
        "occurred_at": "2026-03-19T10:00:00Z",
        "payload": payload,
    }
    fields.update(overrides)
    return fields


def block(start: int = 1000, end: int = 1999, serial: str = "VCS-4150-1000-1999") -> dict[str, Any]:
    return {"serial": serial, "start": start, "end": end}


def issued(**overrides: Any) -> dict[str, Any]:
    payload = {
        "type": "UnitsIssued",
        "project": {
            "project_id": "4150",
            "name": "DelAgua",
            "host_party": "RWA",
            "methodology": "VM0050",
            "sector": "Energy demand",
        },
        "vintage_start": "2024-10-01",
        "vintage_end": "2024-12-31",
        "unit_type": "VCU",
        "serial_block": block(),
        "quantity": 1000,
        "account": "acct-proponent",
        "labels": [
            {
                "kind": "ARTICLE6_AUTHORIZATION",
                "text": "Article 6 Authorized – NDC Use",
                "host_party": "RWA",
                "authorized_uses": [{"purpose": "NDC"}],
                "first_transfer_definition": "AUTHORIZATION",
                "cooperative_approach": "CA0001",
            }
        ],
    }
    payload.update(overrides)
    return payload


def transferred(**overrides: Any) -> dict[str, Any]:
    payload = {
        "type": "UnitsTransferred",
        "serial_block": block(1000, 1099),
        "quantity": 100,
        "from_account": "acct-proponent",
        "to_account": "acct-buyer",
        "from_party": "RWA",
        "to_party": "CHE",
    }
    payload.update(overrides)
    return payload


def label_applied(**overrides: Any) -> dict[str, Any]:
    payload = {
        "type": "AuthorizationLabelApplied",
        "serial_block": block(),
        "quantity": 1000,
        "label": {"kind": "CORSIA_ELIGIBLE", "text": "CORSIA - First Phase"},
    }
    payload.update(overrides)
    return payload


def label_revoked(**overrides: Any) -> dict[str, Any]:
    payload = {
        "type": "AuthorizationLabelRevoked",
        "serial_block": block(),
        "quantity": 1000,
        "label": {"kind": "CORSIA_ELIGIBLE", "text": "CORSIA - First Phase"},
        "reason": "ineligible",
    }
    payload.update(overrides)
    return payload


def retired(**overrides: Any) -> dict[str, Any]:
    payload = {
        "type": "UnitsRetired",
        "serial_block": block(1100, 1199),
        "quantity": 100,
        "account": "acct-proponent",
        "beneficiary": "Airline X",
        "purpose": "OIMP",
        "oimp_scheme": "CORSIA",
        "retired_on": "2026-03-20",
    }
    payload.update(overrides)
    return payload


def cancelled(**overrides: Any) -> dict[str, Any]:
    payload = {
        "type": "UnitsCancelled",
        "serial_block": block(1200, 1209),
        "quantity": 10,
        "account": "acct-proponent",
        "purpose": "OMGE",
        "cancelled_on": "2026-03-21",
    }
    payload.update(overrides)
    return payload


ALL_PAYLOADS = [issued, transferred, label_applied, label_revoked, retired, cancelled]


def event(payload: dict[str, Any] | None = None, **overrides: Any) -> RegistryEvent:
    return RegistryEvent.model_validate(envelope(payload or issued(), **overrides))


# --- hypothesis strategies: arbitrary valid events ---------------------------------------

#: what the model takes: any text but C0 controls other than tab, LF, CR, and DEL
_chars = st.characters(codec="utf-8", exclude_characters="".join(
    chr(c) for c in [*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F]
))  # fmt: skip
text = st.text(_chars, min_size=1, max_size=40)
opt_text = st.none() | st.text(_chars, max_size=40)
party = st.sampled_from(PARTIES)
day = st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2100, 12, 31))
unit_no = st.integers(min_value=0, max_value=2**62)


@st.composite
def serial_blocks(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(unit_no)
    size = draw(st.integers(min_value=1, max_value=10**9))
    return {
        "serial": draw(text),
        "series": draw(st.text(_chars, max_size=20)),
        "start": start,
        "end": start + size - 1,
    }


@st.composite
def labels(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            ["ARTICLE6_AUTHORIZATION", "CORRESPONDING_ADJUSTMENT", "CORSIA_ELIGIBLE", "OTHER"]
        )
    )
    uses = draw(
        st.lists(
            st.sampled_from(
                [
                    {"purpose": "NDC"},
                    {"purpose": "OIMP", "oimp_scheme": "CORSIA"},
                    {"purpose": "OIMP"},
                    {"purpose": "OTHER_PURPOSES"},
                ]
            ),
            min_size=1 if kind == "ARTICLE6_AUTHORIZATION" else 0,
            max_size=3,
        )
    )
    start = draw(st.none() | day)
    end = draw(st.none() | day)
    if start and end and start > end:
        start, end = end, start
    return {
        "kind": kind,
        "text": draw(text),
        "host_party": draw(party) if kind == "ARTICLE6_AUTHORIZATION" else draw(st.none() | party),
        "letter_of_authorization": draw(st.none() | text),
        "authorized_uses": uses,
        "first_transfer_definition": draw(
            st.none() | st.sampled_from(["AUTHORIZATION", "ISSUANCE", "USE_OR_CANCELLATION"])
        ),
        "cooperative_approach": draw(st.none() | st.from_regex(r"\ACA[0-9]{4}\Z")),
        "effective_from": start,
        "effective_until": end,
    }


@st.composite
def payloads(draw: st.DrawFn, project_id: str) -> dict[str, Any]:
    sb = draw(serial_blocks())
    base = {"serial_block": sb, "quantity": sb["end"] - sb["start"] + 1}
    kind = draw(st.sampled_from([f.__name__ for f in ALL_PAYLOADS]))
    if kind == "issued":
        v1, v2 = sorted([draw(day), draw(day)])
        return {
            **base,
            "type": "UnitsIssued",
            "project": {
                "project_id": project_id,
                "name": draw(opt_text),
                "host_party": draw(party),
                "methodology": draw(st.text(_chars, max_size=20)),
                "sector": draw(opt_text),
            },
            "vintage_start": v1,
            "vintage_end": v2,
            "unit_type": draw(text),
            "account": draw(text),
            "account_party": draw(st.none() | party),
            "labels": draw(st.lists(labels(), max_size=3)),
        }
    if kind == "transferred":
        a, b = draw(st.lists(text, min_size=2, max_size=2, unique=True))
        return {
            **base,
            "type": "UnitsTransferred",
            "from_account": a,
            "to_account": b,
            "from_party": draw(st.none() | party),
            "to_party": draw(st.none() | party),
        }
    if kind == "label_applied":
        return {**base, "type": "AuthorizationLabelApplied", "label": draw(labels())}
    if kind == "label_revoked":
        return {
            **base,
            "type": "AuthorizationLabelRevoked",
            "label": draw(labels()),
            "reason": draw(opt_text),
        }
    purpose = draw(
        st.sampled_from(["VOLUNTARY_CLAIM", "NDC_USE", "OIMP", "OMGE", "OTHER", "UNSPECIFIED"])
    )
    use = {
        **base,
        "account": draw(text),
        "beneficiary": draw(opt_text),
        "purpose": purpose,
        "using_party": draw(party) if purpose == "NDC_USE" else draw(st.none() | party),
        "oimp_scheme": draw(st.none() | text) if purpose == "OIMP" else None,
        "details": draw(opt_text),
    }
    if kind == "retired":
        return {**use, "type": "UnitsRetired", "retired_on": draw(day)}
    return {**use, "type": "UnitsCancelled", "cancelled_on": draw(day)}


@st.composite
def registry_events(draw: st.DrawFn) -> RegistryEvent:
    project_id = draw(text)
    occurred = draw(
        st.datetimes(
            min_value=dt.datetime(1990, 1, 1),
            max_value=dt.datetime(2100, 1, 1),
            timezones=st.just(dt.UTC),
        )
    )
    return RegistryEvent.model_validate(
        {
            "event_id": draw(text),
            "registry_id": draw(st.from_regex(r"\A[a-z0-9][a-z0-9._-]{0,20}\Z")),
            "project_id": project_id,
            "sequence": draw(st.integers(min_value=1, max_value=2**63 - 1)),
            "occurred_at": occurred,
            "payload": draw(payloads(project_id)),
        }
    )
