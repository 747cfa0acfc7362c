"""A message's verdict, and the checks that need no ledger.

:func:`authenticate` (signature, key, decoding, model) runs on every core, outside the
batch's transaction; what needs the ledger is the batch's judge
(:mod:`gateway.service.judge`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import ValidationError

from gateway.contract.attestation import (
    HEADER_ATTESTATION,
    HEADER_ATTESTATION_KEY,
    HEADER_ATTESTED_AT,
)
from gateway.contract.codec import SingleObjectCodec
from gateway.contract.errors import ContractError
from gateway.contract.keys import KeyRing
from gateway.contract.message import Headers, verify_and_decode
from gateway.contract.models import RegistryEvent, describe_invalid
from gateway.contract.reasons import Reason
from gateway.streaming.process import Incoming

VERDICT_HEADERS = (
    "crg_verdict",
    "crg_reason",
    "crg_reason_message",
    "crg_ledger_position",
    "crg_source",
    HEADER_ATTESTATION,
    HEADER_ATTESTATION_KEY,
    HEADER_ATTESTED_AT,
)


@dataclass
class Verdict:
    outcome: Literal["accepted", "rejected", "repeat"]
    reason: Reason | None = None
    message: str = ""
    event: RegistryEvent | None = None
    position: int | None = None  # in the ledger: the accepted event's, or a repeat's original
    alerts: list[dict[str, object]] = field(default_factory=list)


def own_headers(headers: Headers) -> list[tuple[str, bytes]]:
    """The sender's headers without any verdict headers it may have forged."""
    return [(k, v) for k, v in headers if k not in VERDICT_HEADERS]


def http_status(reason: Reason) -> int:
    """The status ``POST /v1/events`` answers when authentication refuses an event."""
    if reason == Reason.UNDECODABLE_TOO_LARGE:
        return 413
    if reason == Reason.MODEL_INVALID:
        return 422
    if reason.startswith(("signature_", "key_")):
        return 401
    return 400


def authenticate(msg: Incoming, keys: KeyRing, codec: SingleObjectCodec) -> RegistryEvent | Verdict:
    """The checks that need no ledger (signature, key, decoding, model): safe to run in
    parallel, outside the batch's transaction."""
    try:
        return verify_and_decode(msg.value, msg.headers, keys, codec)
    except ContractError as exc:
        return Verdict("rejected", Reason(exc.reason), str(exc))
    except ValidationError as exc:
        return Verdict("rejected", Reason.MODEL_INVALID, describe_invalid(exc))
