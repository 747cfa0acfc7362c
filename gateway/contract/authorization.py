"""A host Party's authorizations on ``crg.article6.authorizations``: the Party's own
statement, evidenced by its letter of authorization (LoA), that mitigation outcomes of a
scope — a registry's projects, vintages or serial blocks — are authorized for the uses
it names, with its first-transfer definition, from a date and possibly until one.

Registries label units with an Article 6 authorization; only the host Party can
authorize. A national adapter turns a label into an ITMO AUTHORIZATION only when the
label matches a version of the letter the Party signed (:func:`confirmation`); the
registry's label stays as it is on the wire, the Party's record is what confirms it.

On the wire: Avro single-object encoded (``party-authorization`` schema), keyed
``<party>/<letter>``, signed with a key of the Party (trust-store owner ``party:GHA``,
:data:`AUTHORIZATION_DOMAIN`) in ``crg_key_id`` / ``crg_signature``. A higher version of
the same letter replaces the lower; a REVOKED version withdraws it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from enum import StrEnum
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from gateway.contract.codec import SingleObjectCodec
from gateway.contract.errors import ContractError
from gateway.contract.itmo_message import PartySigner, party_owner
from gateway.contract.keys import KeyRing
from gateway.contract.message import Headers, signature_headers
from gateway.contract.models import (
    MAX_LONG,
    AuthorizedUse,
    FirstTransferDefinition,
    Label,
    LabelKind,
)
from gateway.contract.parties import is_party_code
from gateway.contract.schemas import load_subject

SUBJECT = "party-authorization"
AUTHORIZATION_DOMAIN = b"crg.party-authorization.v1\x00"

_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"  # no control characters: ids reach logs and URLs


def _party(code: str) -> str:
    if not is_party_code(code):
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-3 code of a Party")
    return code


Reference = Annotated[str, Field(min_length=1, max_length=200, pattern=_PRINTABLE)]
Vintage = Annotated[int, Field(ge=1990, le=2100)]
UnitNumber = Annotated[int, Field(ge=0, le=MAX_LONG)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)


class ScopeBlock(_Model):
    """Units ``start``–``end`` (inclusive) of a registry's ``series``."""

    series: Annotated[str, Field(max_length=200)] = ""
    start: UnitNumber
    end: UnitNumber

    @model_validator(mode="after")
    def _ordered(self) -> ScopeBlock:
        if self.start > self.end:
            raise ValueError(f"scope block start {self.start} is after end {self.end}")
        return self

    def holds(self, series: str, start: int, end: int) -> bool:
        return self.series == series and self.start <= start and end <= self.end


class Unconfirmed(StrEnum):
    """Why a registry's Article 6 label is not (yet) an authorization of its host Party."""

    NO_LETTER = "label_names_no_letter"  # the label carries no LoA reference
    UNKNOWN = "authorization_unknown"  # the Party has published no such letter (yet)
    REVOKED = "authorization_revoked"
    NOT_IN_FORCE = "authorization_not_in_force"  # the label is dated outside its validity
    OUT_OF_SCOPE = "authorization_out_of_scope"  # other registry, project, vintage or serials
    DISAGREES = "authorization_disagrees"  # approach, uses or first transfer differ


class PartyAuthorization(_Model):
    party: Annotated[str, AfterValidator(_party)]
    letter_of_authorization: Reference
    version: Annotated[int, Field(ge=1, le=2**31 - 1)] = 1
    status: Literal["AUTHORIZED", "REVOKED"] = "AUTHORIZED"
    cooperative_approach: Annotated[str, Field(pattern=r"^CA[0-9]{4}$")]
    authorized_uses: Annotated[tuple[AuthorizedUse, ...], Field(min_length=1)]
    first_transfer_definition: FirstTransferDefinition
    registry_id: Reference
    project_ids: tuple[Reference, ...] = ()
    vintage_first: Vintage | None = None
    vintage_last: Vintage | None = None
    serial_blocks: tuple[ScopeBlock, ...] = ()
    valid_from: dt.date
    valid_until: dt.date | None = None
    issued_at: dt.datetime
    reason: Annotated[str, Field(max_length=2000)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PartyAuthorization:
        if self.issued_at.tzinfo is None or self.issued_at.utcoffset() != dt.timedelta(0):
            raise ValueError("issued_at must be in UTC")
        if (
            self.vintage_first is not None
            and self.vintage_last is not None
            and self.vintage_first > self.vintage_last
        ):
            raise ValueError("vintage_first is after vintage_last")
        if self.valid_until is not None and self.valid_from > self.valid_until:
            raise ValueError("valid_from is after valid_until")
        return self

    @property
    def key(self) -> tuple[str, str]:
        """What a later version replaces: the Party and its letter."""
        return (self.party, self.letter_of_authorization)

    @property
    def kafka_key(self) -> bytes:
        return f"{self.party}/{self.letter_of_authorization}".encode()

    def covers(
        self, registry_id: str, project_id: str, vintage: int, series: str, start: int, end: int
    ) -> bool:
        """Do these units lie wholly within the authorization's scope?"""
        if registry_id != self.registry_id:
            return False
        if self.project_ids and project_id not in self.project_ids:
            return False
        if self.vintage_first is not None and vintage < self.vintage_first:
            return False
        if self.vintage_last is not None and vintage > self.vintage_last:
            return False
        return not self.serial_blocks or any(
            b.holds(series, start, end) for b in self.serial_blocks
        )

    def in_force_on(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_until is None or day <= self.valid_until)

    def disagreement(self, label: Label) -> str | None:
        """What in the registry's label contradicts the Party's statement (None: nothing).
        A label may say less than the Party (no approach, no first-transfer definition,
        fewer uses); never something else."""
        if label.cooperative_approach not in (None, self.cooperative_approach):
            return (
                f"cooperative approach {label.cooperative_approach} is not the "
                f"{self.cooperative_approach} of the letter"
            )
        if label.first_transfer_definition not in (None, self.first_transfer_definition):
            return (
                f"first transfer at {label.first_transfer_definition}, the letter says "
                f"{self.first_transfer_definition}"
            )
        beyond = set(label.authorized_uses) - set(self.authorized_uses)
        if beyond:
            uses = ", ".join(sorted(f"{u.purpose}:{u.oimp_scheme or ''}" for u in beyond))
            return f"uses not authorized by the letter: {uses}"
        return None

    def as_label(self, label: Label) -> Label:
        """The registry's label as the Party confirmed it: its wording and letter kept,
        approach, uses and first-transfer definition the Party's."""
        return label.model_copy(
            update={
                "cooperative_approach": self.cooperative_approach,
                "authorized_uses": self.authorized_uses,
                "first_transfer_definition": FirstTransferDefinition(
                    self.first_transfer_definition
                ),
            }
        )


#: the versions in force, by (Party, letter)
Authorizations = Mapping[tuple[str, str], PartyAuthorization]


def latest(records: Iterable[PartyAuthorization]) -> dict[tuple[str, str], PartyAuthorization]:
    """The highest version of each letter among ``records`` (in any order)."""
    out: dict[tuple[str, str], PartyAuthorization] = {}
    for r in records:
        known = out.get(r.key)
        if known is None or r.version > known.version:
            out[r.key] = r
    return out


def confirmation(
    label: Label,
    authorizations: Authorizations,
    *,
    registry_id: str,
    project_id: str,
    vintage: int,
    series: str,
    start: int,
    end: int,
    on: dt.date,
) -> tuple[PartyAuthorization | None, Unconfirmed | None, str]:
    """Does a letter of the label's host Party confirm this Article 6 label over these
    units, labelled on ``on``? Return (the letter, None, "") when one does; else (None,
    why, in words). A label that names its letter is confirmed by that letter only; one
    that names none (registries' exports often do not) by the first of the Party's
    letters, by reference, that confirms it."""
    if label.kind != LabelKind.ARTICLE6_AUTHORIZATION or label.host_party is None:
        raise ValueError("only an Article 6 authorization label is confirmed by a Party")
    units = (registry_id, project_id, vintage, series, start, end)
    if label.letter_of_authorization is None:
        for key in sorted(k for k in authorizations if k[0] == label.host_party):
            if _refusal(authorizations[key], label, units, on) is None:
                return authorizations[key], None, ""
        return (
            None,
            Unconfirmed.NO_LETTER,
            (
                f"the label names no letter of authorization, and no letter of "
                f"{label.host_party}'s in force confirms it over {_units(units)}"
            ),
        )
    letter = authorizations.get((label.host_party, label.letter_of_authorization))
    if letter is None:
        named = f"{label.host_party}'s letter {label.letter_of_authorization!r}"
        return None, Unconfirmed.UNKNOWN, f"{named} has not been published by the Party"
    refused = _refusal(letter, label, units, on)
    if refused is not None:
        return None, *refused
    return letter, None, ""


def _units(units: tuple[str, str, int, str, int, int]) -> str:
    registry_id, project_id, vintage, series, start, end = units
    return f"{registry_id} {project_id} vintage {vintage} units {series}:{start}-{end}"


def _refusal(
    letter: PartyAuthorization,
    label: Label,
    units: tuple[str, str, int, str, int, int],
    on: dt.date,
) -> tuple[Unconfirmed, str] | None:
    named = f"{letter.party}'s letter {letter.letter_of_authorization!r}"
    if letter.status == "REVOKED":
        return Unconfirmed.REVOKED, f"{named} was revoked (version {letter.version})"
    if not letter.in_force_on(on):
        return Unconfirmed.NOT_IN_FORCE, f"{named} is not in force on {on.isoformat()}"
    if not letter.covers(*units):
        return Unconfirmed.OUT_OF_SCOPE, f"{named} does not cover {_units(units)}"
    differs = letter.disagreement(label)
    if differs is not None:
        return Unconfirmed.DISAGREES, f"{named}: {differs}"
    return None


# -- the wire ------------------------------------------------------------------------------


@cache
def authorization_codec() -> SingleObjectCodec:
    return SingleObjectCodec(load_subject(SUBJECT))


def encode_authorization(record: PartyAuthorization) -> bytes:
    data: dict[str, Any] = record.model_dump(mode="python")
    data["authorized_uses"] = [dict(u) for u in data["authorized_uses"]]
    data["serial_blocks"] = [dict(b) for b in data["serial_blocks"]]
    data["project_ids"] = list(data["project_ids"])
    return authorization_codec().encode(data)


def decode_authorization(value: bytes) -> PartyAuthorization:
    """Raises a ContractError for bytes that are not an authorization, ValueError (pydantic)
    for one whose fields are out of range."""
    data = authorization_codec().decode(value)
    return PartyAuthorization.model_validate(data)


def authorization_headers(signer: PartySigner, value: bytes) -> list[tuple[str, bytes]]:
    """The headers of a published authorization: its content type and the Party's
    signature over the value."""
    return [
        ("content-type", b"application/avro"),
        ("crg_party", signer.party.encode()),
        *signer.headers(value, AUTHORIZATION_DOMAIN),
    ]


def verify_authorization(value: bytes, headers: Headers, keys: KeyRing) -> PartyAuthorization:
    """Check an authorization read from the topic as if anyone could have written it:
    signed over these bytes by a key of the Party it speaks for, valid when the Party says
    it signed. Raises a :class:`ContractError` (its ``reason`` says which) or ValueError."""
    key_id, signature = signature_headers(headers)
    key = keys.verify(key_id, value, signature, AUTHORIZATION_DOMAIN)
    record = decode_authorization(value)
    key.check_usable_at(party_owner(record.party), record.issued_at)
    return record


def verified_authorizations(
    messages: Iterable[tuple[str, bytes, Headers]], keys: KeyRing
) -> tuple[list[PartyAuthorization], list[tuple[str, str, str]]]:
    """Sort messages read from the authorizations topic — (source, value, headers), in
    topic order — into the authorizations that hold and the refused, each as (source,
    reason, message). Nothing on the topic is trusted for being there."""
    held: list[PartyAuthorization] = []
    refused: list[tuple[str, str, str]] = []
    for source, value, headers in messages:
        try:
            held.append(verify_authorization(value, headers, keys))
        except ContractError as exc:
            refused.append((source, exc.reason.value, str(exc)[:500]))
        except ValueError as exc:  # pydantic's ValidationError included
            refused.append((source, "model_invalid", str(exc)[:500]))
    return held, refused
