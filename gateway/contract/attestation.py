"""The gateway's attestation of a verdict, and its check by whoever reads the verdict.

The gateway signs, with a key of its own (owner ``crg:gateway`` in the trust store: no
registry id can contain a colon, so no registry key can attest and no gateway key can sign
a registry's event), a statement binding the verdict to exactly the bytes judged:

    {"event_id", "position", "registry_id", "topic", "value_sha256", "verdict", "attested_at"}

as compact JSON with sorted keys, under its own signature domain. It travels in the
message's headers (``crg_attestation``, ``crg_attestation_key``, ``crg_attested_at``,
beside ``crg_verdict`` and ``crg_ledger_position``). A consumer of the verified topic calls
:func:`verify_verified`: the registry's signature over the value (as the gateway checked
it) *and* the gateway's attestation, for this topic. A message written to the verified
topic by anyone but the gateway fails one or the other.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.contract.codec import SingleObjectCodec
from gateway.contract.errors import ContractError
from gateway.contract.keys import KeyRing
from gateway.contract.message import Headers, header_value, verify_and_decode
from gateway.contract.models import RegistryEvent
from gateway.contract.reasons import Reason
from gateway.contract.signing import decode_signature, encode_signature, sign

#: the owner of the gateway's keys in the trust store (a key kind of its own)
GATEWAY_OWNER = "crg:gateway"
ATTESTATION_DOMAIN = b"crg.gateway-attestation.v1\x00"

HEADER_ATTESTATION = "crg_attestation"
HEADER_ATTESTATION_KEY = "crg_attestation_key"
HEADER_ATTESTED_AT = "crg_attested_at"
HEADER_VERDICT = "crg_verdict"
HEADER_POSITION = "crg_ledger_position"


class AttestationMissing(ContractError):
    reason = Reason.ATTESTATION_MISSING


class AttestationInvalid(ContractError):
    reason = Reason.ATTESTATION_INVALID


@dataclass(frozen=True)
class Claim:
    """What the gateway attests of one verdict."""

    value: bytes  # the exact bytes judged
    verdict: str  # accepted | rejected
    position: int | None  # its ledger position, when accepted
    registry_id: str | None
    event_id: str | None
    topic: str  # where the verdict's message goes
    attested_at: str  # ISO 8601 UTC

    def statement(self) -> bytes:
        """The bytes the gateway signs."""
        return json.dumps(
            {
                "attested_at": self.attested_at,
                "event_id": self.event_id,
                "position": self.position,
                "registry_id": self.registry_id,
                "topic": self.topic,
                "value_sha256": hashlib.sha256(self.value).hexdigest(),
                "verdict": self.verdict,
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()


class Attester:
    """Signs the gateway's verdicts with one gateway key."""

    def __init__(self, key_id: str, private_key: Ed25519PrivateKey) -> None:
        self.key_id = key_id
        self._private_key = private_key

    def __repr__(self) -> str:  # never show key material
        return f"Attester(key_id={self.key_id!r})"

    def headers(self, claim: Claim) -> list[tuple[str, bytes]]:
        signature = sign(self._private_key, claim.statement(), ATTESTATION_DOMAIN)
        return [
            (HEADER_ATTESTATION, encode_signature(signature)),
            (HEADER_ATTESTATION_KEY, self.key_id.encode()),
            (HEADER_ATTESTED_AT, claim.attested_at.encode()),
        ]


@dataclass(frozen=True)
class Attested:
    """A verified-topic message that passed both checks."""

    event: RegistryEvent
    position: int
    attested_by: str  # the gateway key id


def _text(headers: Headers, name: str) -> str:
    raw = header_value(headers, name)
    if raw is None:
        raise AttestationMissing(f"no {name} header: not attested by the gateway")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AttestationInvalid(f"{name} header is not UTF-8") from None


def verify_verified(
    value: bytes, headers: Headers, topic: str, keys: KeyRing, codec: SingleObjectCodec
) -> Attested:
    """Check a message read from the verified ``topic`` as if anyone could have written it:
    the registry's signature over the value, then the gateway's attestation of an
    ``accepted`` verdict on exactly this value, registry, event and topic, by a gateway key
    valid when it attested. Raise a :class:`ContractError` (its ``reason`` says which)."""
    event = verify_and_decode(value, headers, keys, codec)
    signature = decode_signature(_text(headers, HEADER_ATTESTATION))
    key_id = _text(headers, HEADER_ATTESTATION_KEY)
    attested_at = _text(headers, HEADER_ATTESTED_AT)
    verdict = _text(headers, HEADER_VERDICT)
    try:
        position = int(_text(headers, HEADER_POSITION))
        moment = dt.datetime.fromisoformat(attested_at.replace("Z", "+00:00"))
    except ValueError:
        raise AttestationInvalid("ledger position or attestation time malformed") from None
    if moment.tzinfo is None:
        raise AttestationInvalid("attestation time has no time zone")
    claim = Claim(value, verdict, position, event.registry_id, event.event_id, topic, attested_at)
    try:
        record = keys.verify(key_id, claim.statement(), signature, ATTESTATION_DOMAIN)
        record.check_usable_at(GATEWAY_OWNER, moment)
    except ContractError as exc:
        raise AttestationInvalid(f"the gateway's attestation does not hold: {exc}") from None
    if verdict != "accepted":
        raise AttestationInvalid(f"attested verdict is {verdict!r}, not accepted")
    return Attested(event, position, key_id)
