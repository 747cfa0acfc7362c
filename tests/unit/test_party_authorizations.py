"""A host Party's authorization as any national adapter reads it: signed by that Party
(and no one else), decoded, checked field by field, the latest version of a letter in
force, and a registry's Article 6 label confirmed only when it matches the letter."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.contract.authorization import (
    AUTHORIZATION_DOMAIN,
    PartyAuthorization,
    Unconfirmed,
    authorization_headers,
    confirmation,
    decode_authorization,
    encode_authorization,
    latest,
    verified_authorizations,
    verify_authorization,
)
from gateway.contract.errors import ContractError
from gateway.contract.itmo_message import ACTION_DOMAIN, PartySigner, party_owner
from gateway.contract.keys import KeyRing
from gateway.contract.models import Label
from gateway.contract.reasons import Reason
from tests.conftest import RegistryKey

T = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)


def letter(**change: Any) -> PartyAuthorization:
    data: dict[str, Any] = {
        "party": "GHA",
        "letter_of_authorization": "GHA-LOA-2026-001",
        "cooperative_approach": "CA0001",
        "authorized_uses": [{"purpose": "NDC"}, {"purpose": "OIMP", "oimp_scheme": "CORSIA"}],
        "first_transfer_definition": "AUTHORIZATION",
        "registry_id": "verra",
        "project_ids": ["VCS-1"],
        "vintage_first": 2021,
        "vintage_last": 2025,
        "serial_blocks": [{"series": "", "start": 1000, "end": 1999}],
        "valid_from": "2026-01-01",
        "valid_until": "2026-12-31",
        "issued_at": T,
    }
    return PartyAuthorization.model_validate(data | change)


def label(**change: Any) -> Label:
    data: dict[str, Any] = {
        "kind": "ARTICLE6_AUTHORIZATION",
        "text": "Authorized by Ghana",
        "host_party": "GHA",
        "letter_of_authorization": "GHA-LOA-2026-001",
        "authorized_uses": [{"purpose": "NDC"}],
    }
    return Label.model_validate(data | change)


OTHER_USE = [{"purpose": "OTHER_PURPOSES"}]
UNITS: dict[str, Any] = {
    "registry_id": "verra",
    "project_id": "VCS-1",
    "vintage": 2024,
    "series": "",
    "start": 1200,
    "end": 1299,
    "on": dt.date(2026, 6, 1),
}


@pytest.fixture(scope="module")
def ghana() -> tuple[RegistryKey, PartySigner]:
    key = RegistryKey(party_owner("GHA"))
    return key, PartySigner("GHA", key.key_id, key.private)


def signed(record: PartyAuthorization, signer: PartySigner) -> tuple[bytes, list[Any]]:
    value = encode_authorization(record)
    return value, authorization_headers(signer, value)


def test_round_trip_on_the_wire() -> None:
    record = letter(valid_until=None, reason="first statement")
    assert decode_authorization(encode_authorization(record)) == record


def test_a_letter_signed_by_its_party_holds(ghana: tuple[RegistryKey, PartySigner]) -> None:
    key, signer = ghana
    held, refused = verified_authorizations([("t/0/0", *signed(letter(), signer))],
                                            KeyRing([key.record]))  # fmt: skip
    assert (held, refused) == ([letter()], [])


def test_a_letter_for_another_party_signed_with_ghanas_key_is_refused(
    ghana: tuple[RegistryKey, PartySigner],
) -> None:
    key, signer = ghana
    value, headers = signed(letter(party="CHE", letter_of_authorization="CHE-1"), signer)
    held, refused = verified_authorizations([("t/0/1", value, headers)], KeyRing([key.record]))
    assert held == []
    assert [r[1] for r in refused] == [Reason.KEY_WRONG_REGISTRY.value]


def test_a_registry_key_cannot_speak_for_a_party() -> None:
    verra = RegistryKey("verra")
    value, headers = signed(letter(), PartySigner("GHA", verra.key_id, verra.private))
    _, refused = verified_authorizations([("t/0/2", value, headers)], KeyRing([verra.record]))
    assert [r[1] for r in refused] == [Reason.KEY_WRONG_REGISTRY.value]


def test_unsigned_tampered_and_cross_domain_messages_are_refused(
    ghana: tuple[RegistryKey, PartySigner],
) -> None:
    key, signer = ghana
    value, headers = signed(letter(), signer)
    tampered = value[:-1] + bytes([value[-1] ^ 1])
    # an ITMO action's signature (another domain) over the same bytes
    as_action = signer.headers(value, ACTION_DOMAIN)
    messages = [
        ("unsigned", value, [("content-type", b"application/avro")]),
        ("tampered", tampered, headers),
        ("other domain", value, as_action),
        ("not avro", b"{}", [*signer.headers(b"{}", AUTHORIZATION_DOMAIN)]),
    ]
    held, refused = verified_authorizations(messages, KeyRing([key.record]))
    assert held == []
    assert [r[0] for r in refused] == ["unsigned", "tampered", "other domain", "not avro"]
    assert refused[0][1] == Reason.SIGNATURE_MISSING.value
    assert {refused[1][1], refused[2][1]} == {Reason.SIGNATURE_INVALID.value}


def test_a_key_revoked_before_the_letter_was_signed_does_not_hold() -> None:
    key = RegistryKey(party_owner("GHA"), revoked_at=T - dt.timedelta(days=1))
    value, headers = signed(letter(), PartySigner("GHA", key.key_id, key.private))
    with pytest.raises(ContractError) as refused:
        verify_authorization(value, headers, KeyRing([key.record]))
    assert refused.value.reason == Reason.KEY_REVOKED


@pytest.mark.parametrize(
    "change",
    [
        {"party": "Ghana"},
        {"party": "../x"},
        {"letter_of_authorization": "LOA\x00"},
        {"letter_of_authorization": ""},
        {"cooperative_approach": "CA1"},
        {"authorized_uses": []},
        {"vintage_first": 2026, "vintage_last": 2021},
        {"vintage_first": 1200},
        {"serial_blocks": [{"series": "", "start": 5, "end": 4}]},
        {"valid_from": "2027-01-01"},
        {"issued_at": dt.datetime(2026, 3, 1, 9, 30)},
        {"version": 0},
        {"status": "PENDING"},
        {"first_transfer_definition": "SOMETIME"},
    ],
)
def test_fields_out_of_range_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        letter(**change)


def test_the_highest_version_of_each_letter_is_in_force() -> None:
    v1, v2 = letter(), letter(version=2, status="REVOKED")
    other = letter(letter_of_authorization="GHA-LOA-2026-002")
    assert latest([v2, other, v1]) == {v2.key: v2, other.key: other}


def test_a_matching_label_is_confirmed() -> None:
    assert confirmation(label(), latest([letter()]), **UNITS) == (letter(), None, "")


def test_a_label_naming_no_letter_is_confirmed_by_the_first_letter_that_covers_it() -> None:
    narrow = letter(letter_of_authorization="GHA-LOA-2026-000", project_ids=["VCS-9"])
    wide = letter(letter_of_authorization="GHA-LOA-2026-005", project_ids=[])
    swiss = letter(party="CHE", letter_of_authorization="CHE-1", project_ids=[])
    letters = latest([wide, swiss, narrow, letter()])
    found, _, _ = confirmation(label(letter_of_authorization=None), letters, **UNITS)
    assert found == letter()  # GHA-LOA-2026-001: the first by reference that covers


@pytest.mark.parametrize(
    ("letters", "the_label", "units", "why"),
    [
        ([], label(), {}, Unconfirmed.UNKNOWN),
        ([letter()], label(letter_of_authorization=None), {"vintage": 2020}, Unconfirmed.NO_LETTER),
        ([], label(letter_of_authorization=None), {}, Unconfirmed.NO_LETTER),
        ([letter()], label(letter_of_authorization="GHA-LOA-9"), {}, Unconfirmed.UNKNOWN),
        ([letter(), letter(version=2, status="REVOKED")], label(), {}, Unconfirmed.REVOKED),
        ([letter()], label(), {"on": dt.date(2027, 1, 1)}, Unconfirmed.NOT_IN_FORCE),
        ([letter()], label(), {"on": dt.date(2025, 12, 31)}, Unconfirmed.NOT_IN_FORCE),
        ([letter()], label(), {"registry_id": "gold-standard"}, Unconfirmed.OUT_OF_SCOPE),
        ([letter()], label(), {"project_id": "VCS-2"}, Unconfirmed.OUT_OF_SCOPE),
        ([letter()], label(), {"vintage": 2020}, Unconfirmed.OUT_OF_SCOPE),
        ([letter()], label(), {"end": 2000}, Unconfirmed.OUT_OF_SCOPE),
        ([letter()], label(), {"series": "B"}, Unconfirmed.OUT_OF_SCOPE),
        ([letter()], label(cooperative_approach="CA0002"), {}, Unconfirmed.DISAGREES),
        ([letter()], label(first_transfer_definition="ISSUANCE"), {}, Unconfirmed.DISAGREES),
        ([letter()], label(authorized_uses=OTHER_USE), {}, Unconfirmed.DISAGREES),
        ([letter()], label(host_party="CHE"), {}, Unconfirmed.UNKNOWN),
    ],
)
def test_a_label_the_letter_does_not_confirm_says_why(
    letters: list[PartyAuthorization], the_label: Label, units: dict[str, Any], why: Unconfirmed
) -> None:
    found, reason, words = confirmation(the_label, latest(letters), **(UNITS | units))
    assert (found, reason) == (None, why)
    assert words


def test_the_confirmed_label_takes_the_partys_terms() -> None:
    confirmed = letter().as_label(label())
    assert confirmed.cooperative_approach == "CA0001"
    assert confirmed.first_transfer_definition == "AUTHORIZATION"
    assert len(confirmed.authorized_uses) == 2
    assert (confirmed.text, confirmed.letter_of_authorization) == (
        "Authorized by Ghana",
        "GHA-LOA-2026-001",
    )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_hostile_bytes_are_refused_never_raised(data: bytes) -> None:
    key = RegistryKey(party_owner("GHA"))
    signer = PartySigner("GHA", key.key_id, key.private)
    prefixed = encode_authorization(letter())[:10] + data
    for value in (data, prefixed):
        held, refused = verified_authorizations(
            [("x", value, signer.headers(value, AUTHORIZATION_DOMAIN))], KeyRing([key.record])
        )
        assert held == [] and len(refused) == 1
