"""An ITMO action read from a topic is checked before anyone acts on it
(``action_problems``): what the national rules emit passes; a forged field does not."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.national.memory import MemoryUnits
from adapters.national.rules import Numbering, itmo_effect
from gateway.contract.errors import ContractError
from gateway.contract.itmo import ItmoAction, action_problems
from gateway.contract.itmo_message import verify_action
from gateway.contract.reasons import Reason
from ops.loadgen_itmo import action_stream, party_keys, signed_actions
from tests.support.national import NDC_FLOW, REVOKED, STORY, events

BASE = action_stream(1, seed=1)[0]


def test_every_action_the_national_rules_emit_is_fit() -> None:
    units = MemoryUnits()
    emitted: list[ItmoAction] = []
    stream = events("GH-1", STORY) + events("GH-2", NDC_FLOW) + events("GH-3", REVOKED)
    for event in stream:
        effect = itmo_effect(event, units, Numbering())
        units.apply(event.registry_id, effect)
        emitted += effect.actions
    assert len(emitted) >= 8
    assert [a for a in emitted if action_problems(a)] == []
    assert [a for a in action_stream(3000) if action_problems(a)] == []


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"party": "../../v1/state?"}, "party"),
        ({"party": "gha"}, "party"),
        ({"acquiring_party": "CH"}, "acquiring_party"),
        ({"cooperative_approach": "CA1"}, "cooperative approach"),
        ({"party_registry": "GHA1"}, "Party registry"),
        ({"quantity": BASE.quantity + 1}, "quantity"),
        ({"unit_first": BASE.unit_last + 1}, "units"),
        ({"serial_last": BASE.serial_last + 5}, "serials"),
        ({"vintage": 3024}, "vintage"),
        ({"ndc_year": 1800}, "ndc_year"),
        ({"action_id": "f" * 32}, "action id"),
        ({"event_id": "another"}, "action id"),  # the id no longer follows from the fields
    ],
)
def test_a_forged_field_is_named(change: dict[str, Any], said: str) -> None:
    problems = action_problems(dataclasses.replace(BASE, **change))
    assert any(said in p for p in problems), problems


@given(st.text(max_size=12))
def test_only_three_capital_letters_are_a_party_code(party: str) -> None:
    problems = action_problems(dataclasses.replace(BASE, party=party))
    is_code = len(party) == 3 and all("A" <= c <= "Z" for c in party)
    assert any("not a Party code" in p for p in problems) == (not is_code)


def test_only_the_reporting_party_s_key_signs_its_actions() -> None:
    signers, ring = party_keys(["GHA", "CHE"])
    ((_, value, headers),) = signed_actions([BASE], signers)  # a Ghana action
    assert verify_action(value, headers, ring) == BASE

    def reason(value: bytes, headers: list[tuple[str, bytes]]) -> Reason:
        with pytest.raises(ContractError) as refused:
            verify_action(value, headers, ring)
        return refused.value.reason

    assert reason(value, headers[:-2]) == Reason.SIGNATURE_MISSING
    flipped = value[:-1] + bytes([value[-1] ^ 1])  # one bit of the bytes changed
    assert reason(flipped, headers) == Reason.SIGNATURE_INVALID
    ((_, _, swiss),) = signed_actions([BASE], {"GHA": signers["CHE"]})
    assert reason(value, swiss) in (Reason.SIGNATURE_INVALID, Reason.KEY_WRONG_REGISTRY)
    (swiss_signed,) = signed_actions([BASE], {"GHA": signers["CHE"]})
    assert reason(swiss_signed[1], swiss_signed[2]) == Reason.KEY_WRONG_REGISTRY
