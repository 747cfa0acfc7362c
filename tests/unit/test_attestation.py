"""The gateway's attestation and its check (``verify_verified``) as a consumer of the
verified topic runs it, trusting nothing it reads: each way of forging or moving a
verified message is refused with its reason."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

import pytest

from gateway.contract.attestation import (
    GATEWAY_OWNER,
    Attester,
    Claim,
    verify_verified,
)
from gateway.contract.codec import default_codec
from gateway.contract.errors import ContractError
from gateway.contract.keys import KeyRing
from gateway.contract.message import EventSigner
from gateway.contract.models import RegistryEvent
from gateway.contract.reasons import Reason
from tests.conftest import RegistryKey
from tests.factories import envelope, issued

TOPIC = "crg.registry.events.verified"
NOW = "2026-06-01T12:00:00Z"
Headers = Sequence[tuple[str, bytes]]


@pytest.fixture(scope="module")
def parties() -> tuple[RegistryKey, RegistryKey, EventSigner]:
    registry, gateway = RegistryKey("verra"), RegistryKey(GATEWAY_OWNER)
    return registry, gateway, EventSigner(default_codec(), registry.key_id, registry.private)


def verified(
    registry: RegistryKey,
    gateway: RegistryKey,
    signer: EventSigner,
    *,
    position: int = 7,
    topic: str = TOPIC,
    verdict: str = "accepted",
    attested_at: str = NOW,
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A verified-topic message exactly as the gateway writes it."""
    event = RegistryEvent.model_validate(envelope(issued()))
    m = signer.sign_event(event)
    attester = Attester(gateway.key_id, gateway.private)
    said = attester.headers(
        Claim(m.value, verdict, position, event.registry_id, event.event_id, topic, attested_at)
    )
    headers = [
        *m.headers,
        ("crg_verdict", verdict.encode()),
        ("crg_ledger_position", str(position).encode()),
        *said,
    ]
    return m.value, headers


def check(value: bytes, headers: Headers, ring: KeyRing, topic: str = TOPIC) -> Reason:
    with pytest.raises(ContractError) as refused:
        verify_verified(value, headers, topic, ring, default_codec())
    return refused.value.reason


def replaced(headers: Headers, name: str, value: bytes) -> list[tuple[str, bytes]]:
    return [(k, value if k == name else v) for k, v in headers]


def test_what_the_gateway_attests_passes(
    parties: tuple[RegistryKey, RegistryKey, EventSigner],
) -> None:
    registry, gateway, signer = parties
    value, headers = verified(registry, gateway, signer)
    attested = verify_verified(
        value, headers, TOPIC, KeyRing([registry.record, gateway.record]), default_codec()
    )
    assert attested.position == 7
    assert attested.attested_by == gateway.key_id
    assert attested.event.registry_id == "verra"


def test_every_forgery_is_refused_with_its_reason(
    parties: tuple[RegistryKey, RegistryKey, EventSigner],
) -> None:
    registry, gateway, signer = parties
    ring = KeyRing([registry.record, gateway.record])
    value, headers = verified(registry, gateway, signer)

    unsigned = [(k, v) for k, v in headers if k not in ("crg_key_id", "crg_signature")]
    assert check(value, unsigned, ring) == Reason.SIGNATURE_MISSING
    unattested = [(k, v) for k, v in headers if not k.startswith("crg_attest")]
    assert check(value, unattested, ring) == Reason.ATTESTATION_MISSING
    # the same message claimed at another ledger position, or moved to another topic
    assert check(value, replaced(headers, "crg_ledger_position", b"8"), ring) == (
        Reason.ATTESTATION_INVALID
    )
    assert check(value, headers, ring, topic="crg.registry.events.rejected") == (
        Reason.ATTESTATION_INVALID
    )
    later = replaced(headers, "crg_attested_at", b"2026-06-01T12:00:01Z")
    assert check(value, later, ring) == Reason.ATTESTATION_INVALID
    # a rejected verdict's attestation is genuine but is no acceptance
    value_r, headers_r = verified(registry, gateway, signer, verdict="rejected")
    assert check(value_r, headers_r, ring) == Reason.ATTESTATION_INVALID


def test_only_a_gateway_key_valid_at_the_time_attests(
    parties: tuple[RegistryKey, RegistryKey, EventSigner],
) -> None:
    registry, gateway, signer = parties
    # a registry key "attesting": the signature holds, the key is not the gateway's
    value, headers = verified(registry, registry, signer)
    assert check(value, headers, KeyRing([registry.record])) == Reason.ATTESTATION_INVALID
    # a gateway key revoked before the attestation
    revoked = dataclasses.replace(gateway.record, revoked_at=dt.datetime(2026, 5, 1, tzinfo=dt.UTC))
    value, headers = verified(registry, gateway, signer)
    assert check(value, headers, KeyRing([registry.record, revoked])) == (
        Reason.ATTESTATION_INVALID
    )
    # an unknown gateway key
    assert check(value, headers, KeyRing([registry.record])) == Reason.ATTESTATION_INVALID


def test_an_attestation_is_no_registry_signature(
    parties: tuple[RegistryKey, RegistryKey, EventSigner],
) -> None:
    """Signatures of the two kinds live in different domains: the gateway's signature
    over the bytes of a statement never verifies as a registry's over a value."""
    registry, gateway, signer = parties
    value, headers = verified(registry, gateway, signer)
    attestation = dict(headers)["crg_attestation"]
    swapped = replaced(
        replaced(headers, "crg_signature", attestation), "crg_key_id", gateway.key_id.encode()
    )
    assert check(value, swapped, KeyRing([registry.record, gateway.record])) in (
        Reason.SIGNATURE_INVALID,
        Reason.KEY_WRONG_REGISTRY,
    )
