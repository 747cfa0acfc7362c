"""Model rules Avro cannot enforce, and lossless JSON ↔ model ↔ Avro conversion."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from pydantic import ValidationError

from gateway.contract.codec import default_codec
from gateway.contract.models import RegistryEvent
from tests.factories import (
    block,
    cancelled,
    envelope,
    event,
    issued,
    label_applied,
    registry_events,
    retired,
    transferred,
)


def invalid(fields: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        RegistryEvent.model_validate(fields)
    assert fragment in str(info.value)


def test_quantity_must_equal_the_inclusive_range_size() -> None:
    invalid(envelope(issued(quantity=999)), "does not equal the serial range size 1000")
    invalid(envelope(transferred(quantity=101)), "does not equal the serial range size 100")


def test_single_unit_block() -> None:
    e = event(retired(serial_block=block(5, 5), quantity=1))
    assert e.serial_block.size == 1


def test_start_after_end() -> None:
    invalid(envelope(retired(serial_block=block(10, 9), quantity=1)), "start 10 is after end 9")


def test_negative_and_oversize_numbers() -> None:
    invalid(envelope(retired(serial_block=block(-1, 5), quantity=7)), "greater than or equal")
    invalid(envelope(issued(), sequence=0), "sequence")
    invalid(envelope(issued(), sequence=2**63), "sequence")


@pytest.mark.parametrize("code", ["XXX", "gha", "GH", "GHAN", "", "123"])
def test_party_codes_must_be_iso_alpha3(code: str) -> None:
    invalid(envelope(transferred(to_party=code)), "to_party")


def test_european_union_is_a_party() -> None:
    assert event(transferred(to_party="EUU")).payload.to_party == "EUU"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "when", ["2026-03-19T10:00:00", "2026-03-19T10:00:00+02:00", "2026-03-19T10:00:00-05:00"]
)
def test_occurred_at_must_be_utc(when: str) -> None:
    invalid(envelope(issued(), occurred_at=when), "occurred_at")


def test_utc_spellings_are_accepted() -> None:
    for when in ["2026-03-19T10:00:00Z", "2026-03-19T10:00:00+00:00"]:
        assert event(occurred_at=when).occurred_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


@pytest.mark.parametrize("field", ["event_id", "project_id"])
def test_ids_must_not_be_empty(field: str) -> None:
    invalid(envelope(issued(), **{field: ""}), field)


def test_registry_id_is_a_slug() -> None:
    invalid(envelope(issued(), registry_id="Verra Registry"), "registry_id")


def test_issued_project_must_match_envelope() -> None:
    invalid(envelope(issued(), project_id="999"), "differs from the issued project")


def test_article6_label_needs_host_party_and_uses() -> None:
    lbl = {"kind": "ARTICLE6_AUTHORIZATION", "text": "A6", "authorized_uses": [{"purpose": "NDC"}]}
    invalid(envelope(label_applied(label=lbl)), "needs its host_party")
    lbl = {"kind": "ARTICLE6_AUTHORIZATION", "text": "A6", "host_party": "GHA"}
    invalid(envelope(label_applied(label=lbl)), "at least one authorized use")


def test_cooperative_approach_format() -> None:
    lbl = {
        "kind": "ARTICLE6_AUTHORIZATION",
        "text": "A6",
        "host_party": "GHA",
        "authorized_uses": [{"purpose": "NDC"}],
        "cooperative_approach": "CA12",
    }
    invalid(envelope(label_applied(label=lbl)), "cooperative_approach")


def test_oimp_scheme_only_with_oimp() -> None:
    invalid(envelope(retired(purpose="VOLUNTARY_CLAIM")), "only meaningful for purpose OIMP")


def test_ndc_use_needs_using_party() -> None:
    invalid(envelope(cancelled(purpose="NDC_USE")), "needs the using_party")
    assert event(cancelled(purpose="NDC_USE", using_party="CHE")).payload.using_party == "CHE"  # type: ignore[union-attr]


def test_transfer_needs_two_accounts() -> None:
    invalid(envelope(transferred(to_account="acct-proponent")), "two different accounts")


def test_vintage_order() -> None:
    invalid(envelope(issued(vintage_start="2025-01-01")), "vintage_start is after vintage_end")


def test_unknown_fields_are_refused() -> None:
    invalid(envelope(issued(colour="green")), "colour")
    invalid({**envelope(issued()), "extra": 1}, "extra")


def test_unknown_event_type() -> None:
    invalid(envelope({"type": "UnitsBurned"}), "UnitsBurned")


@settings(max_examples=300, deadline=None)
@given(registry_events())
def test_json_model_avro_json_is_lossless(original: RegistryEvent) -> None:
    text = original.model_dump_json()
    from_json = RegistryEvent.model_validate_json(text)
    codec = default_codec()
    from_avro = RegistryEvent.from_avro(codec.decode(codec.encode(from_json.to_avro())))
    assert from_avro == original
    assert json.loads(from_avro.model_dump_json()) == json.loads(text)


POISON = ["nul\x00event", "tab\x0bvertical", "esc\x1b[2J", "del\x7f", "\x01"]


@pytest.mark.parametrize("poison", POISON)
@pytest.mark.parametrize(
    "path",
    [
        ("event_id",),
        ("payload", "account"),
        ("payload", "unit_type"),
        ("payload", "project", "name"),
        ("payload", "serial_block", "serial"),
        ("payload", "labels", 0, "text"),
        ("payload", "labels", 0, "letter_of_authorization"),
    ],
)
def test_control_characters_are_refused_in_every_string(
    path: tuple[str | int, ...], poison: str
) -> None:
    """A NUL in a string made PostgreSQL refuse the row and stopped the gateway on every
    restart; other C0 controls break spreadsheets and terminals. Each is a model error."""
    data = envelope(issued(labels=[{"kind": "OTHER", "text": "x", "letter_of_authorization": "L"}]))
    target: Any = data
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = poison
    with pytest.raises(ValidationError, match="control character"):
        RegistryEvent.model_validate(data)


def test_tab_and_line_breaks_in_free_text_are_kept() -> None:
    data = envelope(issued())
    data["payload"]["project"]["name"] = "Clean\tCooking\r\nGhana"
    assert RegistryEvent.model_validate(data).payload.project.name == "Clean\tCooking\r\nGhana"
