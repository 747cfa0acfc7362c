"""ITMO actions on ``crg.article6.itmo-actions``: Avro single-object encoded with the
stored ``itmo-action`` schema, keyed by the reporting Party, headers naming the action,
signed by the reporting Party's national adapter with a key of that Party (trust-store
owner ``party:GHA``; its own signature domain) in ``crg_key_id`` / ``crg_signature``."""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.contract.codec import SingleObjectCodec
from gateway.contract.errors import ContractError
from gateway.contract.itmo import FIELDS, ItmoAction
from gateway.contract.keys import KeyRing
from gateway.contract.message import HEADER_KEY_ID, HEADER_SIGNATURE, Headers, signature_headers
from gateway.contract.schemas import load_subject
from gateway.contract.signing import encode_signature, sign
from gateway.contract.time import utc_text

SUBJECT = "itmo-action"
ACTION_DOMAIN = b"crg.itmo-action.v1\x00"


def party_owner(party: str) -> str:
    """The trust-store owner of a Party's keys (no registry id contains a colon)."""
    return f"party:{party}"


@cache
def action_codec() -> SingleObjectCodec:
    return SingleObjectCodec(load_subject(SUBJECT))


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def encode_action(action: ItmoAction) -> bytes:
    record: dict[str, Any] = action.row()
    record["occurred_at"] = _parse_time(action.occurred_at)
    record["first_id"] = str(action.first_id)
    record["last_id"] = str(action.last_id)
    return action_codec().encode(record)


def decode_action(data: bytes) -> ItmoAction:
    record = action_codec().decode(data)
    moment: dt.datetime = record["occurred_at"]
    record["occurred_at"] = utc_text(moment)
    return ItmoAction.from_row({k: record[k] for k in FIELDS})


def action_headers(action: ItmoAction) -> list[tuple[str, bytes]]:
    return [
        ("crg_action_id", action.action_id.encode()),
        ("crg_action_type", action.action_type.value.encode()),
        ("crg_party", action.party.encode()),
        ("crg_event_id", action.event_id.encode()),
        ("content-type", b"application/avro"),
    ]


class PartySigner:
    """Signs what a Party publishes with one key of that Party: the ITMO actions its
    national adapter emits, and its authorizations (each kind in its own domain)."""

    def __init__(self, party: str, key_id: str, private_key: Ed25519PrivateKey) -> None:
        self.party = party
        self.key_id = key_id
        self._private_key = private_key

    def __repr__(self) -> str:  # never show key material
        return f"PartySigner(party={self.party!r}, key_id={self.key_id!r})"

    def headers(self, value: bytes, domain: bytes = ACTION_DOMAIN) -> list[tuple[str, bytes]]:
        signature = sign(self._private_key, value, domain)
        return [
            (HEADER_KEY_ID, self.key_id.encode()),
            (HEADER_SIGNATURE, encode_signature(signature)),
        ]


def verify_action(value: bytes, headers: Headers, keys: KeyRing) -> ItmoAction:
    """Check an action read from the ITMO-actions topic as if anyone could have written
    it: signed over these bytes by a key of the reporting Party valid when the action
    occurred. Raises a :class:`ContractError` (its ``reason`` says which)."""
    key_id, signature = signature_headers(headers)
    record = keys.verify(key_id, value, signature, ACTION_DOMAIN)
    try:
        action = decode_action(value)
    except (ValueError, KeyError, TypeError) as exc:
        raise ContractError(f"the action does not decode: {exc}") from None
    record.check_usable_at(party_owner(action.party), _parse_time(action.occurred_at))
    return action
