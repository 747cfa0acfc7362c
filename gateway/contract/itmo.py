"""ITMO actions: what a Party's ITMO ledger records, one row per homogeneous block and
action, with the fields the AEF's Actions table asks for (``article6-formats.md`` §1.3).

An action is reported from one Party's side (``party``): a transfer between Parties is a
``TRANSFER`` for the transferring Party and an ``ACQUISITION`` for the acquiring one.
Corresponding adjustments are marked on the action that causes them (2/CMA.3 annex
para 8): the first transferring Party adds at first transfer, for the year the outcome
occurred (the vintage); the using Party subtracts at use towards its NDC, for the year of
use.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gateway.contract.itmo_identifier import ItmoId


class ActionType(StrEnum):
    AUTHORIZATION = "AUTHORIZATION"
    FIRST_TRANSFER = "FIRST_TRANSFER"
    TRANSFER = "TRANSFER"
    ACQUISITION = "ACQUISITION"
    USE_NDC = "USE_NDC"
    USE_OIMP = "USE_OIMP"
    CANCELLATION = "CANCELLATION"
    VOLUNTARY_CANCELLATION = "VOLUNTARY_CANCELLATION"
    LABEL_REVOCATION = "LABEL_REVOCATION"  # not an AEF action: the authorization is withdrawn


#: our action type → the AEF "Action type" value (nomenclature table 25(b))
AEF_ACTION_TYPE = {
    ActionType.AUTHORIZATION: "Authorization",
    ActionType.FIRST_TRANSFER: "First transfer",
    ActionType.TRANSFER: "Transfer",
    ActionType.ACQUISITION: "Acquisition",
    ActionType.USE_NDC: "Use",
    ActionType.USE_OIMP: "Use",
    ActionType.CANCELLATION: "Cancellation",
    ActionType.VOLUNTARY_CANCELLATION: "Voluntary Cancellation",
}


class Subtype(StrEnum):
    """AEF action subtypes (nomenclature table 26(b)), as spelt there."""

    TO_ANOTHER_PARTY = "First transfer to another Party"
    AT_AUTHORIZATION = "Authorization"
    AT_ISSUANCE = "Issuance"
    AT_USE_OR_CANCELLATION = "Use or cancellation"
    OMGE = "Voluntary cancellation to deliver OMGE"
    OTHER_CANCELLATION = "Other cancellations"


class AdjustmentSign(StrEnum):
    ADD = "ADD"  # the first transferring Party adds to its emissions balance
    SUBTRACT = "SUBTRACT"  # the using Party subtracts


@dataclass(frozen=True)
class ItmoAction:
    action_id: str
    party: str  # whose ITMO ledger records it (the reporting Party)
    action_type: ActionType
    subtype: str | None
    occurred_at: str  # ISO 8601 UTC, the program registry's event time
    event_id: str
    registry_id: str  # the crediting program's registry (the underlying unit registry)
    project_id: str
    cooperative_approach: str
    authorization_id: str  # the letter of authorization reference (else the label text)
    first_transferring_party: str  # the host Party that authorized the outcomes
    party_registry: str  # the originating Party registry id (e.g. GHA01)
    serial_first: int
    serial_last: int
    vintage: int
    series: str
    unit_first: int
    unit_last: int
    quantity: int
    purposes: str  # authorized purposes, e.g. "NDC and OIMP"
    first_transfer_definition: str | None  # the host Party's choice for OIMP, if any
    transferring_party: str | None = None
    acquiring_party: str | None = None
    using_party: str | None = None
    using_entity: str | None = None
    oimp_purpose: str | None = None  # e.g. CORSIA
    ndc_year: int | None = None
    ca_party: str | None = None  # the Party that must apply a corresponding adjustment
    ca_year: int | None = None
    ca_sign: AdjustmentSign | None = None
    details: str | None = None

    @property
    def first_id(self) -> ItmoId:
        return ItmoId(
            self.cooperative_approach,
            self.party_registry,
            self.first_transferring_party,
            self.serial_first,
            self.vintage,
        )

    @property
    def last_id(self) -> ItmoId:
        return self.first_id.with_serial(self.serial_last)

    def row(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in FIELDS}
        data["action_type"] = self.action_type.value
        data["ca_sign"] = self.ca_sign.value if self.ca_sign else None
        return data

    @classmethod
    def from_row(cls, data: dict[str, Any]) -> ItmoAction:
        return cls(
            **{
                **data,
                "action_type": ActionType(data["action_type"]),
                "ca_sign": AdjustmentSign(data["ca_sign"]) if data["ca_sign"] else None,
            }
        )


FIELDS: tuple[str, ...] = tuple(ItmoAction.__dataclass_fields__)


def action_id(
    registry_id: str, event_id: str, action_type: ActionType, party: str, series: str, start: int
) -> str:
    """Deterministic: the same event always yields the same action ids, whoever replays
    it; downstream subscribers and the international registry dedupe by it."""
    key = json.dumps([registry_id, event_id, action_type.value, party, series, start])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def causes(action: ItmoAction) -> tuple[str, ...]:
    """The ids of the actions of another Party that must reach the international registry
    before this one: an acquisition follows the transferring Party's transfer — or first
    transfer — of the same units by the same event (the rules make both sides of a
    transfer between Parties from one event). Any one of them, answered, is enough."""
    if action.action_type != ActionType.ACQUISITION or not action.transferring_party:
        return ()
    return tuple(
        action_id(action.registry_id, action.event_id, kind, action.transferring_party,
                  action.series, action.unit_first)
        for kind in (ActionType.TRANSFER, ActionType.FIRST_TRANSFER)
    )  # fmt: skip


_PARTY = re.compile(r"[A-Z]{3}")
_PARTY_FIELDS = (
    "party",
    "first_transferring_party",
    "transferring_party",
    "acquiring_party",
    "using_party",
    "ca_party",
)
_MAX_NUMBER = 2**63 - 1  # a unit or ITMO serial number: an Avro long
_YEARS = range(1990, 2101)


def action_problems(action: ItmoAction) -> list[str]:
    """What makes ``action`` unfit to act on, as a consumer that trusts no topic sees it:
    Party codes, numbers in range and consistent, the action id the one its fields give.
    Empty when it is fit."""
    problems = [
        f"{name} {value!r} is not a Party code (three capital letters)"
        for name in _PARTY_FIELDS
        if (value := getattr(action, name)) is not None and not _PARTY.fullmatch(value)
    ]
    if not re.fullmatch(r"CA\d{4}", action.cooperative_approach):
        problems.append(f"cooperative approach {action.cooperative_approach!r} is not CANNNN")
    if not re.fullmatch(r"[A-Z]{3}\d{2}", action.party_registry):
        problems.append(f"Party registry {action.party_registry!r} is not alpha-3 and 2 digits")
    first, last = action.unit_first, action.unit_last
    if not 0 <= first <= last <= _MAX_NUMBER:
        problems.append(f"units {first}-{last} are not a range of unit numbers")
    elif action.quantity != last - first + 1:
        problems.append(f"quantity {action.quantity} is not the {last - first + 1} units")
    serials = action.serial_last - action.serial_first
    if not 0 <= action.serial_first <= action.serial_last <= _MAX_NUMBER or serials != last - first:
        problems.append(
            f"ITMO serials {action.serial_first}-{action.serial_last} do not match the units"
        )
    for name in ("vintage", "ndc_year", "ca_year"):
        year = getattr(action, name)
        if year is not None and year not in _YEARS:
            problems.append(f"{name} {year} is not a year of the Paris Agreement's span")
    expected = action_id(
        action.registry_id,
        action.event_id,
        action.action_type,
        action.party,
        action.series,
        action.unit_first,
    )
    if action.action_id != expected:
        problems.append("the action id is not the one its fields give")
    return problems
