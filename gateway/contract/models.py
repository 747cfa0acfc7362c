"""Pydantic models of the registry events: what Avro alone cannot enforce.

A block's quantity equals its inclusive range size, start ≤ end, Parties are
ISO 3166-1 alpha-3 (or EUU), timestamps are UTC, ids are non-empty. The models
are the JSON form of an event and convert to and from the Avro record losslessly.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializationInfo,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.contract.parties import is_party_code

AVRO_NAMESPACE = "org.crg.registry"
MAX_LONG = 2**63 - 1


def _party_from_wire(value: Any) -> Any:
    return value.decode("ascii", errors="replace") if isinstance(value, bytes) else value


def _party_to_wire(code: str, info: SerializationInfo) -> str | bytes:
    return code if info.mode_is_json() else code.encode("ascii")


def _check_party(code: str) -> str:
    if not is_party_code(code):
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-3 code of a Party or country")
    return code


# str in JSON; the 3-byte Avro fixed ``PartyCode`` when dumped for the codec.
PartyCode = Annotated[
    str,
    BeforeValidator(_party_from_wire),
    AfterValidator(_check_party),
    PlainSerializer(_party_to_wire),
]
NonEmptyStr = Annotated[str, Field(min_length=1)]
Count = Annotated[int, Field(ge=1, le=MAX_LONG)]
UnitNumber = Annotated[int, Field(ge=0, le=MAX_LONG)]


#: C0 control characters but tab, line feed and carriage return, and DEL: no registry
#: text needs them, PostgreSQL refuses NUL in text, spreadsheets refuse the rest
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _no_controls(value: Any) -> Any:
    if isinstance(value, str):
        found = _CONTROL.search(value)
        if found:
            raise ValueError(
                f"control character U+{ord(found.group()):04X} at position {found.start()}"
            )
    elif isinstance(value, tuple | list):
        for item in value:
            _no_controls(item)
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        return _no_controls(value)


class LabelKind(StrEnum):
    ARTICLE6_AUTHORIZATION = "ARTICLE6_AUTHORIZATION"
    CORRESPONDING_ADJUSTMENT = "CORRESPONDING_ADJUSTMENT"
    CORSIA_ELIGIBLE = "CORSIA_ELIGIBLE"
    OTHER = "OTHER"


class AuthorizedPurpose(StrEnum):
    NDC = "NDC"
    OIMP = "OIMP"
    OTHER_PURPOSES = "OTHER_PURPOSES"


class FirstTransferDefinition(StrEnum):
    AUTHORIZATION = "AUTHORIZATION"
    ISSUANCE = "ISSUANCE"
    USE_OR_CANCELLATION = "USE_OR_CANCELLATION"


class UsePurpose(StrEnum):
    VOLUNTARY_CLAIM = "VOLUNTARY_CLAIM"
    NDC_USE = "NDC_USE"
    OIMP = "OIMP"
    OMGE = "OMGE"
    OTHER = "OTHER"
    UNSPECIFIED = "UNSPECIFIED"


class SerialBlock(_Model):
    serial: NonEmptyStr
    series: str = ""
    start: UnitNumber
    end: UnitNumber

    @model_validator(mode="after")
    def _ordered(self) -> SerialBlock:
        if self.start > self.end:
            raise ValueError(f"serial block start {self.start} is after end {self.end}")
        return self

    @property
    def size(self) -> int:
        return self.end - self.start + 1


class Project(_Model):
    project_id: NonEmptyStr
    name: str | None = None
    host_party: PartyCode
    methodology: str
    sector: str | None = None


class AuthorizedUse(_Model):
    purpose: AuthorizedPurpose
    oimp_scheme: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _scheme_only_for_oimp(self) -> AuthorizedUse:
        if self.oimp_scheme is not None and self.purpose != AuthorizedPurpose.OIMP:
            raise ValueError("oimp_scheme is only meaningful for purpose OIMP")
        return self


class Label(_Model):
    kind: LabelKind
    text: NonEmptyStr
    host_party: PartyCode | None = None
    letter_of_authorization: Annotated[str, Field(min_length=1)] | None = None
    authorized_uses: tuple[AuthorizedUse, ...] = ()
    first_transfer_definition: FirstTransferDefinition | None = None
    cooperative_approach: Annotated[str, Field(pattern=r"^CA[0-9]{4}$")] | None = None
    effective_from: dt.date | None = None
    effective_until: dt.date | None = None

    @model_validator(mode="after")
    def _article6_complete(self) -> Label:
        if self.kind == LabelKind.ARTICLE6_AUTHORIZATION:
            if self.host_party is None:
                raise ValueError("an Article 6 authorization label needs its host_party")
            if not self.authorized_uses:
                raise ValueError(
                    "an Article 6 authorization label needs at least one authorized use"
                )
        if (
            self.effective_from is not None
            and self.effective_until is not None
            and self.effective_from > self.effective_until
        ):
            raise ValueError("label effective_from is after effective_until")
        return self


class _BlockPayload(_Model):
    serial_block: SerialBlock
    quantity: Count

    @model_validator(mode="after")
    def _quantity_is_range_size(self) -> _BlockPayload:
        if self.quantity != self.serial_block.size:
            raise ValueError(
                f"quantity {self.quantity} does not equal the serial range size "
                f"{self.serial_block.size} ({self.serial_block.start}..{self.serial_block.end})"
            )
        return self


class UnitsIssued(_BlockPayload):
    type: Literal["UnitsIssued"] = "UnitsIssued"
    project: Project
    vintage_start: dt.date
    vintage_end: dt.date
    unit_type: NonEmptyStr
    account: NonEmptyStr
    account_party: PartyCode | None = None
    labels: tuple[Label, ...] = ()

    @model_validator(mode="after")
    def _vintage_ordered(self) -> UnitsIssued:
        if self.vintage_start > self.vintage_end:
            raise ValueError("vintage_start is after vintage_end")
        return self

    @property
    def vintage(self) -> int:
        return self.vintage_end.year


class UnitsTransferred(_BlockPayload):
    type: Literal["UnitsTransferred"] = "UnitsTransferred"
    from_account: NonEmptyStr
    to_account: NonEmptyStr
    from_party: PartyCode | None = None
    to_party: PartyCode | None = None

    @model_validator(mode="after")
    def _two_accounts(self) -> UnitsTransferred:
        if self.from_account == self.to_account:
            raise ValueError("a transfer needs two different accounts")
        return self


class AuthorizationLabelApplied(_BlockPayload):
    type: Literal["AuthorizationLabelApplied"] = "AuthorizationLabelApplied"
    label: Label


class AuthorizationLabelRevoked(_BlockPayload):
    type: Literal["AuthorizationLabelRevoked"] = "AuthorizationLabelRevoked"
    label: Label
    reason: str | None = None


class _UsePayload(_BlockPayload):
    account: NonEmptyStr
    beneficiary: str | None = None
    purpose: UsePurpose = UsePurpose.UNSPECIFIED
    using_party: PartyCode | None = None
    oimp_scheme: Annotated[str, Field(min_length=1)] | None = None
    details: str | None = None

    @model_validator(mode="after")
    def _purpose_fields(self) -> _UsePayload:
        if self.purpose == UsePurpose.NDC_USE and self.using_party is None:
            raise ValueError("use towards an NDC needs the using_party")
        if self.oimp_scheme is not None and self.purpose != UsePurpose.OIMP:
            raise ValueError("oimp_scheme is only meaningful for purpose OIMP")
        return self


class UnitsRetired(_UsePayload):
    type: Literal["UnitsRetired"] = "UnitsRetired"
    retired_on: dt.date


class UnitsCancelled(_UsePayload):
    type: Literal["UnitsCancelled"] = "UnitsCancelled"
    cancelled_on: dt.date


Payload = Annotated[
    UnitsIssued
    | UnitsTransferred
    | AuthorizationLabelApplied
    | AuthorizationLabelRevoked
    | UnitsRetired
    | UnitsCancelled,
    Field(discriminator="type"),
]

EVENT_TYPES: tuple[str, ...] = (
    "UnitsIssued",
    "UnitsTransferred",
    "AuthorizationLabelApplied",
    "AuthorizationLabelRevoked",
    "UnitsRetired",
    "UnitsCancelled",
)


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() != dt.timedelta(0):
        raise ValueError("occurred_at must be a UTC timestamp (offset +00:00 or Z)")
    return value.astimezone(dt.UTC)


class RegistryEvent(_Model):
    event_id: NonEmptyStr
    registry_id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=64)]
    project_id: NonEmptyStr
    sequence: Count
    occurred_at: Annotated[dt.datetime, AfterValidator(_utc)]
    payload: Payload

    @model_validator(mode="after")
    def _project_consistent(self) -> RegistryEvent:
        if (
            isinstance(self.payload, UnitsIssued)
            and self.payload.project.project_id != self.project_id
        ):
            raise ValueError(
                f"envelope project_id {self.project_id!r} differs from the issued project "
                f"{self.payload.project.project_id!r}"
            )
        return self

    @property
    def event_type(self) -> str:
        return self.payload.type

    @property
    def serial_block(self) -> SerialBlock:
        return self.payload.serial_block

    def to_avro(self) -> dict[str, Any]:
        """The Avro record the codec writes (union branch named explicitly)."""
        record = self.model_dump(mode="python")
        payload = record["payload"]
        record["payload"] = (f"{AVRO_NAMESPACE}.{payload.pop('type')}", payload)
        return record

    @classmethod
    def from_avro(cls, record: dict[str, Any]) -> RegistryEvent:
        """Validate a decoded Avro record (as the codec returns it) into a model."""
        fields = dict(record)
        name, payload = fields["payload"]
        fields["payload"] = {**payload, "type": name.rsplit(".", 1)[-1]}
        return cls.model_validate(fields)


def describe_invalid(exc: ValidationError, limit: int = 5) -> str:
    """A model error in one line: ``field.path: problem; …`` (the first ``limit`` problems)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'event'}: {err['msg']}"
        for err in exc.errors()[:limit]
    )
