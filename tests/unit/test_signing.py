"""Signatures over the exact bytes; keys bound to a registry and a validity window."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.contract.codec import default_codec
from gateway.contract.errors import (
    KeyExpired,
    KeyNotThisRegistry,
    KeyNotValidYet,
    KeyRevoked,
    KeyUnknown,
    SignatureInvalid,
    SignatureMissing,
)
from gateway.contract.keys import KeyRing
from gateway.contract.message import (
    HEADER_KEY_ID,
    HEADER_SIGNATURE,
    EventSigner,
    SignedMessage,
    verify_and_decode,
)
from gateway.contract.signing import SIGNING_DOMAIN, encode_signature
from tests.conftest import T0, RegistryKey
from tests.factories import event

CODEC = default_codec()


def signed(key: RegistryKey, **overrides: object) -> SignedMessage:
    return EventSigner(CODEC, key.key_id, key.private).sign_event(event(**overrides))


def set_header(message: SignedMessage, name: str, value: bytes) -> list[tuple[str, bytes]]:
    return [(k, value if k == name else v) for k, v in message.headers]


def test_a_signed_event_verifies(verra_key: RegistryKey, key_ring: KeyRing) -> None:
    message = signed(verra_key)
    assert verify_and_decode(message.value, message.headers, key_ring, CODEC) == event()


def test_signature_covers_domain_prefix_and_exact_bytes(verra_key: RegistryKey) -> None:
    message = signed(verra_key)
    signature = verra_key.private.sign(SIGNING_DOMAIN + message.value)
    assert message.header(HEADER_SIGNATURE) == encode_signature(signature)
    # a signature over the bare value (no domain prefix) is not accepted
    bare = encode_signature(verra_key.private.sign(message.value))
    ring = KeyRing([verra_key.record])
    with pytest.raises(SignatureInvalid):
        verify_and_decode(message.value, set_header(message, HEADER_SIGNATURE, bare), ring, CODEC)


def test_every_single_bit_flip_of_the_value_fails(
    verra_key: RegistryKey, key_ring: KeyRing
) -> None:
    message = signed(verra_key)
    for position in range(len(message.value)):
        tampered = bytearray(message.value)
        tampered[position] ^= 0x01
        with pytest.raises(SignatureInvalid):
            verify_and_decode(bytes(tampered), message.headers, key_ring, CODEC)


def test_tampered_signature_header(verra_key: RegistryKey, key_ring: KeyRing) -> None:
    message = signed(verra_key)
    sig = bytearray(message.header(HEADER_SIGNATURE) or b"")
    sig[10] = ord("A") if sig[10] != ord("A") else ord("B")
    with pytest.raises(SignatureInvalid):
        verify_and_decode(
            message.value, set_header(message, HEADER_SIGNATURE, bytes(sig)), key_ring, CODEC
        )
    with pytest.raises(SignatureInvalid):
        verify_and_decode(
            message.value, set_header(message, HEADER_SIGNATURE, b"!!notbase64"), key_ring, CODEC
        )


def test_key_id_header_pointing_at_another_key(verra_key: RegistryKey) -> None:
    other = RegistryKey("verra")
    ring = KeyRing([verra_key.record, other.record])
    message = signed(verra_key)
    with pytest.raises(SignatureInvalid):
        verify_and_decode(
            message.value, set_header(message, HEADER_KEY_ID, other.key_id.encode()), ring, CODEC
        )


def test_missing_headers(verra_key: RegistryKey, key_ring: KeyRing) -> None:
    message = signed(verra_key)
    for dropped in (HEADER_KEY_ID, HEADER_SIGNATURE):
        headers = [(k, v) for k, v in message.headers if k != dropped]
        with pytest.raises(SignatureMissing):
            verify_and_decode(message.value, headers, key_ring, CODEC)


def test_wrong_key(verra_key: RegistryKey) -> None:
    impostor = Ed25519PrivateKey.generate()
    message = EventSigner(CODEC, verra_key.key_id, impostor).sign_event(event())
    with pytest.raises(SignatureInvalid):
        verify_and_decode(message.value, message.headers, KeyRing([verra_key.record]), CODEC)


def test_unknown_key(verra_key: RegistryKey) -> None:
    message = signed(verra_key)
    with pytest.raises(KeyUnknown):
        verify_and_decode(message.value, message.headers, KeyRing(), CODEC)


def test_key_of_another_registry() -> None:
    gold = RegistryKey("gold-standard")
    message = signed(gold)  # a valid signature by Gold Standard on an event claiming to be Verra's
    with pytest.raises(KeyNotThisRegistry):
        verify_and_decode(message.value, message.headers, KeyRing([gold.record]), CODEC)


def test_revoked_key_fails_from_revocation_time_on(verra_key: RegistryKey) -> None:
    revoked_at = dt.datetime(2026, 3, 19, 10, 0, tzinfo=dt.UTC)
    ring = KeyRing([replace(verra_key.record, revoked_at=revoked_at)])
    at_revocation = signed(verra_key, occurred_at="2026-03-19T10:00:00Z")
    with pytest.raises(KeyRevoked):
        verify_and_decode(at_revocation.value, at_revocation.headers, ring, CODEC)
    before = signed(verra_key, occurred_at="2026-03-19T09:59:59.999999Z")
    assert verify_and_decode(before.value, before.headers, ring, CODEC).event_id == "evt-1"


def test_expired_key(verra_key: RegistryKey) -> None:
    until = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    ring = KeyRing([replace(verra_key.record, valid_until=until)])
    message = signed(verra_key)  # occurred 2026-03-19
    with pytest.raises(KeyExpired):
        verify_and_decode(message.value, message.headers, ring, CODEC)


def test_key_not_yet_valid() -> None:
    late = RegistryKey("verra", valid_from=dt.datetime(2026, 6, 1, tzinfo=dt.UTC))
    message = signed(late)
    with pytest.raises(KeyNotValidYet):
        verify_and_decode(message.value, message.headers, KeyRing([late.record]), CODEC)


def test_cloudevents_headers_and_key(verra_key: RegistryKey) -> None:
    message = signed(verra_key)
    headers = dict(message.headers)
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_id"] == b"evt-1"
    assert headers["ce_source"] == b"/registries/verra"
    assert headers["ce_type"] == b"org.crg.registry.UnitsIssued"
    assert headers["ce_time"] == b"2026-03-19T10:00:00Z"
    assert headers["content-type"] == b"application/avro"
    assert message.key == b"verra/4150"


def test_same_units_same_key_whatever_the_event_type(verra_key: RegistryKey) -> None:
    from tests.factories import retired

    a = signed(verra_key)
    b = signed(verra_key, payload=retired(), event_id="evt-2", sequence=2)
    assert a.key == b.key


def test_signing_is_deterministic(verra_key: RegistryKey) -> None:
    assert signed(verra_key) == signed(verra_key)


def test_signer_repr_shows_no_key_material(verra_key: RegistryKey) -> None:
    signer = EventSigner(CODEC, verra_key.key_id, verra_key.private)
    assert repr(signer) == f"EventSigner(key_id={verra_key.key_id!r})"


def test_rotation_closes_open_keys_after_the_overlap(verra_key: RegistryKey) -> None:
    ring = KeyRing([verra_key.record])
    new = RegistryKey("verra", valid_from=T0 + dt.timedelta(days=30))
    changed = ring.rotated(new.record, overlap=dt.timedelta(hours=2))
    assert [r.key_id for r in changed] == [new.key_id, verra_key.key_id]
    assert changed[1].valid_until == T0 + dt.timedelta(days=30, hours=2)
    for record in changed:
        ring.put(record)
    old = ring.get(verra_key.key_id)
    old.check_usable_at("verra", T0 + dt.timedelta(days=30, hours=1))
    with pytest.raises(KeyExpired):
        old.check_usable_at("verra", T0 + dt.timedelta(days=30, hours=3))


def test_a_key_id_cannot_be_rebound_to_another_key(verra_key: RegistryKey) -> None:
    ring = KeyRing([verra_key.record])
    other = RegistryKey("verra")
    with pytest.raises(ValueError, match="already registered"):
        ring.put(replace(other.record, key_id=verra_key.key_id))
