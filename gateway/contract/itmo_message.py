"""ITMO actions on ``crg.article6.itmo-actions``: Avro single-object encoded with the
stored ``itmo-action`` schema, keyed by the reporting Party, headers naming the action."""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

from gateway.contract.codec import SingleObjectCodec
from gateway.contract.itmo import FIELDS, ItmoAction
from gateway.contract.schemas import load_subject
from gateway.contract.time import utc_text

SUBJECT = "itmo-action"


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
