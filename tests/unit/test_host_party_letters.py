"""Only the host Party authorizes: a registry's Article 6 label makes ITMOs when a letter
of the Party confirms it; otherwise the units are a claim, with no action, until a letter
arrives (then, in order of the units, they take effect) or the claim lapses. Every
expected row is written from the rules by hand."""

from __future__ import annotations

import datetime as dt
from typing import Any

from adapters.national.memory import MemoryUnits
from adapters.national.rules import Numbering, itmo_effect
from adapters.national.units import ItmoState
from gateway.contract.authorization import PartyAuthorization, Unconfirmed
from gateway.contract.models import RegistryEvent
from tests.factories import envelope
from tests.unit.test_itmo_rules import GHANA_LOA, NO_CA, Story, issue, label, retire, row, transfer

APPLIED = "AuthorizationLabelApplied"
REVOKED = "AuthorizationLabelRevoked"
LETTER_EVENT = "letter:GHA/GHA-LoA-2025-001/v"


def ghana_letter(version: int = 1, **change: Any) -> PartyAuthorization:
    data: dict[str, Any] = {
        "party": "GHA",
        "letter_of_authorization": "GHA-LoA-2025-001",
        "version": version,
        "cooperative_approach": "CA0007",
        "authorized_uses": [{"purpose": "NDC"}, {"purpose": "OIMP", "oimp_scheme": "CORSIA"}],
        "first_transfer_definition": "AUTHORIZATION",
        "registry_id": "verra",
        "project_ids": ["GH-1"],
        "valid_from": "2026-01-01",
        "issued_at": dt.datetime(2026, 9, 1, 8, 0, tzinfo=dt.UTC),
    }
    return PartyAuthorization.model_validate(data | change)


class LetterStory(Story):
    """The story of ``test_itmo_rules`` with letters required (none published yet)."""

    def __init__(self, *letters: PartyAuthorization) -> None:
        super().__init__()
        self.units = MemoryUnits({letter.key: letter for letter in letters})

    def claims(self) -> list[tuple[int, int, str, str]]:
        return [s for s in self.states() if s[2] == ItmoState.CLAIMED]

    def letter(self, letter: PartyAuthorization) -> list[tuple[Any, ...]]:
        effect = self.units.take_letter(letter)
        assert {a.event_id for a in effect.actions} <= {LETTER_EVENT + str(letter.version)}
        return [row(a) for a in effect.actions]


AUTHORIZED_NOW = [
    ("GHA", "AUTHORIZATION", None, "CA0007-GHA01-GHA-1000-2024", "CA0007-GHA01-GHA-1999-2024",
     1000, None, None, NO_CA),
    ("GHA", "FIRST_TRANSFER", "Authorization", "CA0007-GHA01-GHA-1000-2024",
     "CA0007-GHA01-GHA-1999-2024", 1000, None, None, ("GHA", 2024, "ADD")),
]  # fmt: skip


def test_a_label_the_party_confirmed_makes_itmos_at_once() -> None:
    story = LetterStory(ghana_letter())
    story(issue(1000, 1999, []))
    assert story(label(APPLIED, 1000, 1999, GHANA_LOA)) == AUTHORIZED_NOW
    assert story.claims() == []


def test_a_label_without_a_letter_is_a_claim_until_the_letter_arrives() -> None:
    story = LetterStory()
    story(issue(1000, 1999, []))
    assert story(label(APPLIED, 1000, 1999, GHANA_LOA)) == []  # no ITMO, no action
    assert story.claims() == [(1000, 1999, "CLAIMED", "GHA")]
    (claim,) = [c for c in story.units.blocks if c.state == ItmoState.CLAIMED]
    assert claim.claimed_on == "2026-02-01"
    # a letter of another scope confirms nothing
    assert story.letter(ghana_letter(project_ids=["GH-2"])) == []
    assert story.claims() == [(1000, 1999, "CLAIMED", "GHA")]
    # the letter that covers it: the claim takes effect, as it would have at once
    assert story.letter(ghana_letter(version=2)) == AUTHORIZED_NOW
    assert story.states() == [(1000, 1999, "FIRST_TRANSFERRED", "GHA")]


def test_the_claim_says_why() -> None:
    story = LetterStory(ghana_letter(valid_from="2026-06-01"))
    story(issue(1000, 1999, []))
    labelled = RegistryEvent.model_validate(
        envelope(label(APPLIED, 1000, 1999, GHANA_LOA), event_id="e2", sequence=2,
                 project_id="GH-1", occurred_at="2026-02-01T12:00:00Z")
    )  # fmt: skip
    effect = itmo_effect(labelled, story.units, Numbering())
    ((claimed, why, words),) = effect.claims
    assert (claimed.start, claimed.end, why) == (1000, 1999, Unconfirmed.NOT_IN_FORCE)
    assert "not in force on 2026-02-01" in words
    assert effect.actions == []


def test_claimed_units_that_moved_to_switzerland_are_first_transferred_when_confirmed() -> None:
    story = LetterStory()
    story(issue(1000, 1999, []))
    story(label(APPLIED, 1000, 1999, GHANA_LOA))
    assert story(transfer(1000, 1399, "ch-buyer", "CHE")) == []  # a claim: no ITMO moves
    assert story.claims() == [(1000, 1399, "CLAIMED", "CHE"), (1400, 1999, "CLAIMED", "GHA")]
    assert story.letter(ghana_letter()) == [
        ("GHA", "AUTHORIZATION", None, "CA0007-GHA01-GHA-1000-2024",
         "CA0007-GHA01-GHA-1399-2024", 400, None, None, NO_CA),
        ("GHA", "FIRST_TRANSFER", "Authorization", "CA0007-GHA01-GHA-1000-2024",
         "CA0007-GHA01-GHA-1399-2024", 400, None, None, ("GHA", 2024, "ADD")),
        # already first transferred at authorization: Ghana's transfer, Switzerland's
        # acquisition, no second adjustment
        ("GHA", "TRANSFER", None, "CA0007-GHA01-GHA-1000-2024",
         "CA0007-GHA01-GHA-1399-2024", 400, "CHE", None, NO_CA),
        ("CHE", "ACQUISITION", None, "CA0007-GHA01-GHA-1000-2024",
         "CA0007-GHA01-GHA-1399-2024", 400, None, "GHA", NO_CA),
        ("GHA", "AUTHORIZATION", None, "CA0007-GHA01-GHA-1400-2024",
         "CA0007-GHA01-GHA-1999-2024", 600, None, None, NO_CA),
        ("GHA", "FIRST_TRANSFER", "Authorization", "CA0007-GHA01-GHA-1400-2024",
         "CA0007-GHA01-GHA-1999-2024", 600, None, None, ("GHA", 2024, "ADD")),
    ]  # fmt: skip
    assert story.states() == [
        (1000, 1399, "FIRST_TRANSFERRED", "CHE"),
        (1400, 1999, "FIRST_TRANSFERRED", "GHA"),
    ]


def test_a_claim_lapses_when_its_units_are_used_or_its_label_withdrawn_first() -> None:
    story = LetterStory()
    story(issue(1000, 1999, []))
    story(label(APPLIED, 1000, 1999, GHANA_LOA))
    assert story(retire(1000, 1099, "gh-proponent", purpose="VOLUNTARY_CLAIM",
                        retired_on="2026-04-01")) == []  # fmt: skip
    assert story(label(REVOKED, 1900, 1999, GHANA_LOA)) == []
    assert story.states() == [
        (1000, 1099, "LAPSED", "GHA"),
        (1100, 1899, "CLAIMED", "GHA"),
        (1900, 1999, "LAPSED", "GHA"),
    ]
    actions = story.letter(ghana_letter())
    assert [(a[1], a[5]) for a in actions] == [("AUTHORIZATION", 800), ("FIRST_TRANSFER", 800)]


def test_the_partys_terms_are_the_ones_the_actions_carry() -> None:
    """A label that names no approach nor first-transfer definition, confirmed by the
    Party's letter (first transfer at use or cancellation, approach CA0042)."""
    bare = {k: v for k, v in GHANA_LOA.items()
            if k not in ("cooperative_approach", "first_transfer_definition")}  # fmt: skip
    story = LetterStory(ghana_letter(cooperative_approach="CA0042",
                                     first_transfer_definition="USE_OR_CANCELLATION"))  # fmt: skip
    story(issue(1000, 1999, []))
    assert story(label(APPLIED, 1000, 1999, bare)) == [
        ("GHA", "AUTHORIZATION", None, "CA0042-GHA01-GHA-1000-2024",
         "CA0042-GHA01-GHA-1999-2024", 1000, None, None, NO_CA),
    ]  # fmt: skip


def test_a_label_that_contradicts_the_letter_stays_a_claim() -> None:
    story = LetterStory(ghana_letter(first_transfer_definition="ISSUANCE"))
    story(issue(1000, 1999, []))
    assert story(label(APPLIED, 1000, 1999, GHANA_LOA)) == []  # the label says AUTHORIZATION
    assert story.claims() == [(1000, 1999, "CLAIMED", "GHA")]


def test_a_revoked_letter_ends_itmos_before_first_transfer_and_not_after() -> None:
    ndc = {**GHANA_LOA, "first_transfer_definition": None}
    letter = ghana_letter(first_transfer_definition="USE_OR_CANCELLATION")
    story = LetterStory(letter)
    story(issue(1000, 1999, []))
    story(label(APPLIED, 1000, 1999, {k: v for k, v in ndc.items() if v is not None}))
    story(transfer(1000, 1399, "ch-buyer", "CHE"))  # first transferred to Switzerland
    revoked = letter.model_copy(update={"version": 2, "status": "REVOKED", "reason": "withdrawn"})
    actions = story.letter(revoked)
    assert [(a[0], a[1], a[3], a[5]) for a in actions] == [
        ("GHA", "LABEL_REVOCATION", "CA0007-GHA01-GHA-1000-2024", 400),  # recorded, stands
        ("GHA", "LABEL_REVOCATION", "CA0007-GHA01-GHA-1400-2024", 600),
    ]
    assert story.states() == [
        (1000, 1399, "FIRST_TRANSFERRED", "CHE"),
        (1400, 1999, "REVOKED", "GHA"),
    ]
    # a label after the revocation is a claim: the letter is no longer in force
    story(issue(3000, 3999, []))
    assert story(label(APPLIED, 3000, 3999, GHANA_LOA)) == []
    assert (3000, 3999, "CLAIMED", "GHA") in story.claims()


def test_without_letters_required_the_registry_label_suffices() -> None:
    story = Story()  # MemoryUnits() : letters() is None
    story(issue(1000, 1999, []))
    assert story(label(APPLIED, 1000, 1999, GHANA_LOA)) == AUTHORIZED_NOW
