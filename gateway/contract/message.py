"""The Kafka form of a signed event: key, value, signature and CloudEvents headers.

Value: the single-object encoded event, exactly the bytes that were signed.
Headers: ``crg_key_id`` and ``crg_signature`` (base64), plus the CloudEvents Kafka
protocol binding in binary mode (``ce_specversion``, ``ce_id``, ``ce_source``,
``ce_type``, ``ce_time``, ``content-type``). The CloudEvents headers are a courtesy
for routing and tooling; only the signed value is authoritative.
Key: ``<registry_id>/<project_id>``, so every event about the same units lands in
the same partition, in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.contract.codec import SingleObjectCodec
from gateway.contract.errors import SignatureMissing
from gateway.contract.keys import KeyRing
from gateway.contract.models import AVRO_NAMESPACE, RegistryEvent
from gateway.contract.signing import decode_signature, encode_signature, sign
from gateway.contract.time import utc_text

HEADER_KEY_ID = "crg_key_id"
HEADER_SIGNATURE = "crg_signature"
CONTENT_TYPE = "application/avro"
CE_SPECVERSION = "1.0"

Headers = Sequence[tuple[str, bytes]]


@dataclass(frozen=True)
class SignedMessage:
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> bytes | None:
        return header_value(self.headers, name)


def header_value(headers: Headers, name: str) -> bytes | None:
    """The value of the first header called ``name`` (Kafka allows repeats; we read one)."""
    for key, value in headers:
        if key == name:
            return value
    return None


def partition_key(registry_id: str, project_id: str) -> bytes:
    return f"{registry_id}/{project_id}".encode()


def ce_type(event_type: str) -> str:
    return f"{AVRO_NAMESPACE}.{event_type}"


class EventSigner:
    """Encodes events with the current schema and signs them with one registry key."""

    def __init__(self, codec: SingleObjectCodec, key_id: str, private_key: Ed25519PrivateKey):
        self.codec = codec
        self.key_id = key_id
        self._private_key = private_key

    def __repr__(self) -> str:  # never show key material
        return f"EventSigner(key_id={self.key_id!r})"

    def sign_event(self, event: RegistryEvent) -> SignedMessage:
        value = self.codec.encode(event.to_avro())
        return signed_message(event, value, self.key_id, sign(self._private_key, value))


def signed_message(
    event: RegistryEvent, value: bytes, key_id: str, signature: bytes
) -> SignedMessage:
    """The Kafka form of an event whose value and signature already exist (e.g. HTTP ingest)."""
    headers = (
        (HEADER_KEY_ID, key_id.encode()),
        (HEADER_SIGNATURE, encode_signature(signature)),
        ("ce_specversion", CE_SPECVERSION.encode()),
        ("ce_id", event.event_id.encode()),
        ("ce_source", f"/registries/{event.registry_id}".encode()),
        ("ce_type", ce_type(event.event_type).encode()),
        ("ce_time", utc_text(event.occurred_at).encode()),
        ("content-type", CONTENT_TYPE.encode()),
    )
    return SignedMessage(partition_key(event.registry_id, event.project_id), value, headers)


def signature_headers(headers: Headers) -> tuple[str, bytes]:
    """The key id and raw signature carried in the headers."""
    key_id = header_value(headers, HEADER_KEY_ID)
    signature = header_value(headers, HEADER_SIGNATURE)
    if not key_id or not signature:
        raise SignatureMissing("message has no crg_key_id / crg_signature header")
    try:
        key_text = key_id.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureMissing("crg_key_id header is not UTF-8") from None
    return key_text, decode_signature(signature)


def verify_and_decode(
    value: bytes, headers: Headers, keys: KeyRing, codec: SingleObjectCodec
) -> RegistryEvent:
    """Verify the signature over the exact bytes, decode, then check the key's registry
    and validity at the event's ``occurred_at``. Raises a :class:`ContractError` subtype,
    or pydantic's ``ValidationError`` when the decoded event breaks a model rule."""
    key_id, signature = signature_headers(headers)
    record = keys.verify(key_id, value, signature)
    event = RegistryEvent.from_avro(codec.decode(value))
    record.check_usable_at(event.registry_id, event.occurred_at)
    return event
