"""The ITMO rules on realistic Article 6 stories. Every expected row is written out by
hand from the rules (first transfer, perspective, corresponding adjustments), not
captured from the code's output."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.national.memory import MemoryUnits
from adapters.national.rules import Numbering, itmo_effect
from adapters.national.units import ItmoState
from gateway.contract.itmo import ItmoAction
from gateway.contract.itmo_identifier import parse
from gateway.contract.models import EVENT_TYPES, RegistryEvent
from tests.factories import block, envelope

GHANA_LOA = {
    "kind": "ARTICLE6_AUTHORIZATION",
    "text": "Article 6 Authorized – Intl mitigation purposes",
    "host_party": "GHA",
    "letter_of_authorization": "GHA-LoA-2025-001",
    "authorized_uses": [{"purpose": "OIMP", "oimp_scheme": "CORSIA"}, {"purpose": "NDC"}],
    "first_transfer_definition": "AUTHORIZATION",
    "cooperative_approach": "CA0007",
}
NDC_ONLY = {
    "kind": "ARTICLE6_AUTHORIZATION",
    "text": "Article 6 Authorized – NDC Use",
    "host_party": "GHA",
    "letter_of_authorization": "GHA-LoA-2025-002",
    "authorized_uses": [{"purpose": "NDC"}],
    "cooperative_approach": "CA0002",
}


class Story:
    """Events of one Ghanaian project in Verra's registry, applied in order."""

    def __init__(self) -> None:
        self.units = MemoryUnits()
        self.n = 0

    def __call__(self, payload: dict[str, Any]) -> list[tuple[Any, ...]]:
        self.n += 1
        event = RegistryEvent.model_validate(
            envelope(
                payload,
                event_id=f"e{self.n}",
                sequence=self.n,
                project_id="GH-1",
                occurred_at=f"2026-0{self.n}-01T12:00:00Z",
            )
        )
        effect = itmo_effect(event, self.units, Numbering())
        self.units.apply(event.registry_id, effect)
        return [row(a) for a in effect.actions]

    def states(self) -> list[tuple[int, int, str, str]]:
        return sorted((b.start, b.end, b.state.value, b.holder_party) for b in self.units.blocks)


def row(a: ItmoAction) -> tuple[Any, ...]:
    """The facts a test states for an action."""
    return (
        a.party,
        a.action_type.value,
        a.subtype,
        str(a.first_id),
        str(a.last_id),
        a.quantity,
        a.acquiring_party,
        a.transferring_party,
        (a.ca_party, a.ca_year, a.ca_sign.value if a.ca_sign else None),
    )


NO_CA = (None, None, None)


def issue(start: int, end: int, labels: list[dict[str, Any]], vintage: str = "2024") -> dict:
    return {
        "type": "UnitsIssued",
        "project": {"project_id": "GH-1", "host_party": "GHA", "methodology": "VMR0006"},
        "vintage_start": f"{vintage}-01-01",
        "vintage_end": f"{vintage}-12-31",
        "unit_type": "VCU",
        "serial_block": block(start, end),
        "quantity": end - start + 1,
        "account": "gh-proponent",
        "labels": labels,
    }


def label(kind: str, start: int, end: int, lbl: dict[str, Any]) -> dict:
    return {
        "type": kind,
        "serial_block": block(start, end),
        "quantity": end - start + 1,
        "label": lbl,
    }


def transfer(start: int, end: int, to_account: str, to_party: str | None, **more: Any) -> dict:
    return {
        "type": "UnitsTransferred",
        "serial_block": block(start, end),
        "quantity": end - start + 1,
        "from_account": more.pop("from_account", "gh-proponent"),
        "to_account": to_account,
        "to_party": to_party,
        **more,
    }


def retire(start: int, end: int, account: str, **more: Any) -> dict:
    return {
        "type": more.pop("type", "UnitsRetired"),
        "serial_block": block(start, end),
        "quantity": end - start + 1,
        "account": account,
        **more,
    }


def test_ghana_first_transfer_at_authorization_then_switzerland_and_corsia() -> None:
    story = Story()
    assert story(issue(1000, 1999, [])) == []  # not authorized: no ITMO yet
    # Ghana authorizes for NDC and CORSIA, first transfer defined as authorization:
    # the first transfer happens now, and Ghana must add an adjustment for 2024.
    assert story(label("AuthorizationLabelApplied", 1000, 1999, GHANA_LOA)) == [
        (
            "GHA",
            "AUTHORIZATION",
            None,
            "CA0007-GHA01-GHA-1000-2024",
            "CA0007-GHA01-GHA-1999-2024",
            1000,
            None,
            None,
            NO_CA,
        ),
        (
            "GHA",
            "FIRST_TRANSFER",
            "Authorization",
            "CA0007-GHA01-GHA-1000-2024",
            "CA0007-GHA01-GHA-1999-2024",
            1000,
            None,
            None,
            ("GHA", 2024, "ADD"),
        ),
    ]
    # 400 to an account under Switzerland's jurisdiction: already first transferred, so a
    # transfer for Ghana and an acquisition for Switzerland, no new adjustment.
    assert story(transfer(1000, 1399, "ch-buyer", "CHE")) == [
        (
            "GHA",
            "TRANSFER",
            None,
            "CA0007-GHA01-GHA-1000-2024",
            "CA0007-GHA01-GHA-1399-2024",
            400,
            "CHE",
            None,
            NO_CA,
        ),
        (
            "CHE",
            "ACQUISITION",
            None,
            "CA0007-GHA01-GHA-1000-2024",
            "CA0007-GHA01-GHA-1399-2024",
            400,
            None,
            "GHA",
            NO_CA,
        ),
    ]
    # 100 retired for CORSIA from the Ghanaian account: use for OIMP, reported by Ghana.
    used = story(
        retire(
            1400,
            1499,
            "gh-proponent",
            purpose="OIMP",
            oimp_scheme="CORSIA",
            beneficiary="Airline X",
            retired_on="2026-04-02",
        )
    )
    assert used == [
        (
            "GHA",
            "USE_OIMP",
            None,
            "CA0007-GHA01-GHA-1400-2024",
            "CA0007-GHA01-GHA-1499-2024",
            100,
            None,
            None,
            NO_CA,
        ),
    ]
    action = story.units.actions[-1]
    assert (action.oimp_purpose, action.using_entity) == ("CORSIA", "Airline X")
    assert (action.unit_first, action.unit_last, action.registry_id) == (1400, 1499, "verra")
    assert story.states() == [  # the block split three ways
        (1000, 1399, "FIRST_TRANSFERRED", "CHE"),
        (1400, 1499, "USED", "GHA"),
        (1500, 1999, "FIRST_TRANSFERRED", "GHA"),
    ]


def test_ndc_use_flow_first_transfer_at_the_international_transfer() -> None:
    story = Story()
    assert story(issue(5000, 5499, [NDC_ONLY], vintage="2023")) == [
        (
            "GHA",
            "AUTHORIZATION",
            None,
            "CA0002-GHA01-GHA-5000-2023",
            "CA0002-GHA01-GHA-5499-2023",
            500,
            None,
            None,
            NO_CA,
        ),
    ]
    # a domestic transfer is no ITMO action
    assert story(transfer(5000, 5499, "gh-trader", "GHA")) == []
    assert story(transfer(5000, 5499, "ch-ministry", "CHE", from_account="gh-trader")) == [
        (
            "GHA",
            "FIRST_TRANSFER",
            "First transfer to another Party",
            "CA0002-GHA01-GHA-5000-2023",
            "CA0002-GHA01-GHA-5499-2023",
            500,
            "CHE",
            None,
            ("GHA", 2023, "ADD"),
        ),
        (
            "CHE",
            "ACQUISITION",
            None,
            "CA0002-GHA01-GHA-5000-2023",
            "CA0002-GHA01-GHA-5499-2023",
            500,
            None,
            "GHA",
            NO_CA,
        ),
    ]
    # Switzerland uses 200 towards its NDC in 2026: it subtracts them for 2026.
    assert story(
        retire(
            5000, 5199, "ch-ministry", purpose="NDC_USE", using_party="CHE", retired_on="2026-06-30"
        )
    ) == [
        (
            "CHE",
            "USE_NDC",
            None,
            "CA0002-GHA01-GHA-5000-2023",
            "CA0002-GHA01-GHA-5199-2023",
            200,
            None,
            None,
            ("CHE", 2026, "SUBTRACT"),
        ),
    ]
    assert story.units.actions[-1].ndc_year == 2026
    assert story.states() == [
        (5000, 5199, "USED", "CHE"),
        (5200, 5499, "FIRST_TRANSFERRED", "CHE"),
    ]


def test_label_revoked_before_first_transfer_ends_the_itmo_life() -> None:
    story = Story()
    story(issue(1, 100, []))
    assert [r[1] for r in story(label("AuthorizationLabelApplied", 1, 100, NDC_ONLY))] == [
        "AUTHORIZATION"
    ]
    assert story(label("AuthorizationLabelRevoked", 1, 100, NDC_ONLY)) == [
        (
            "GHA",
            "LABEL_REVOCATION",
            None,
            "CA0002-GHA01-GHA-1-2024",
            "CA0002-GHA01-GHA-100-2024",
            100,
            None,
            None,
            NO_CA,
        ),
    ]
    assert story(transfer(1, 100, "ch-buyer", "CHE")) == []  # no longer ITMOs
    assert story.states() == [(1, 100, "REVOKED", "GHA")]


def test_revocation_after_first_transfer_is_recorded_and_the_adjustment_stands() -> None:
    story = Story()
    story(issue(1, 100, [GHANA_LOA]))
    revoked = story(label("AuthorizationLabelRevoked", 1, 100, GHANA_LOA))
    assert [r[1] for r in revoked] == ["LABEL_REVOCATION"]
    assert "adjustment stand" in (story.units.actions[-1].details or "")
    assert story.states() == [(1, 100, "FIRST_TRANSFERRED", "GHA")]


def test_a_block_split_three_ways_by_a_transfer_in_its_middle() -> None:
    story = Story()
    story(issue(1000, 1999, [NDC_ONLY]))
    moved = story(transfer(1300, 1599, "ch-buyer", "CHE"))
    assert [(r[0], r[1], r[3], r[4]) for r in moved] == [
        ("GHA", "FIRST_TRANSFER", "CA0002-GHA01-GHA-1300-2024", "CA0002-GHA01-GHA-1599-2024"),
        ("CHE", "ACQUISITION", "CA0002-GHA01-GHA-1300-2024", "CA0002-GHA01-GHA-1599-2024"),
    ]
    assert story.states() == [
        (1000, 1299, "AUTHORIZED", "GHA"),
        (1300, 1599, "FIRST_TRANSFERRED", "CHE"),
        (1600, 1999, "AUTHORIZED", "GHA"),
    ]
    # Switzerland cancels part of its piece to deliver OMGE: reported by Switzerland
    rows = story(
        retire(
            1300, 1349, "ch-buyer", purpose="OMGE", type="UnitsCancelled", cancelled_on="2026-05-01"
        )
    )
    assert rows == [
        (
            "CHE",
            "CANCELLATION",
            "Voluntary cancellation to deliver OMGE",
            "CA0002-GHA01-GHA-1300-2024",
            "CA0002-GHA01-GHA-1349-2024",
            50,
            None,
            None,
            NO_CA,
        ),
    ]
    assert story.states()[1:3] == [
        (1300, 1349, "CANCELLED", "CHE"),
        (1350, 1599, "FIRST_TRANSFERRED", "CHE"),
    ]


def test_first_transfer_at_use_or_cancellation() -> None:
    story = Story()
    use_or_cancel = {**GHANA_LOA, "first_transfer_definition": "USE_OR_CANCELLATION"}
    assert [r[1] for r in story(issue(1, 10, [use_or_cancel]))] == ["AUTHORIZATION"]
    rows = story(retire(1, 10, "gh-proponent", purpose="VOLUNTARY_CLAIM", retired_on="2026-02-02"))
    assert rows == [
        (
            "GHA",
            "FIRST_TRANSFER",
            "Use or cancellation",
            "CA0007-GHA01-GHA-1-2024",
            "CA0007-GHA01-GHA-10-2024",
            10,
            None,
            None,
            ("GHA", 2024, "ADD"),
        ),
        (
            "GHA",
            "VOLUNTARY_CANCELLATION",
            "Other cancellations",
            "CA0007-GHA01-GHA-1-2024",
            "CA0007-GHA01-GHA-10-2024",
            10,
            None,
            None,
            NO_CA,
        ),
    ]


def test_units_without_article6_authorization_never_become_itmos() -> None:
    story = Story()
    corsia = {"kind": "CORSIA_ELIGIBLE", "text": "CORSIA - First Phase, 2024-2026 Scope"}
    assert story(issue(1, 10, [corsia])) == []
    assert story(transfer(1, 10, "ch-buyer", "CHE")) == []
    assert (
        story(
            retire(1, 10, "ch-buyer", purpose="NDC_USE", using_party="CHE", retired_on="2026-01-01")
        )
        == []
    )
    assert story.units.blocks == []


def test_reauthorization_after_revocation_starts_a_new_itmo_life_for_that_part() -> None:
    story = Story()
    story(issue(1, 100, [NDC_ONLY]))
    story(label("AuthorizationLabelRevoked", 1, 100, NDC_ONLY))
    again = story(label("AuthorizationLabelApplied", 41, 60, NDC_ONLY))
    assert [(r[1], r[3], r[4]) for r in again] == [
        ("AUTHORIZATION", "CA0002-GHA01-GHA-41-2024", "CA0002-GHA01-GHA-60-2024")
    ]
    assert story.states() == [
        (1, 40, "REVOKED", "GHA"),
        (41, 60, "AUTHORIZED", "GHA"),
        (61, 100, "REVOKED", "GHA"),
    ]


def test_a_label_on_units_issued_before_the_adapter_started_is_noted_not_invented() -> None:
    units = MemoryUnits()
    event = RegistryEvent.model_validate(
        envelope(label("AuthorizationLabelApplied", 1, 10, NDC_ONLY), project_id="GH-1")
    )
    effect = itmo_effect(event, units, Numbering())
    assert effect.actions == [] and effect.add == []
    assert effect.notes == ["no issuance known for units 1-10: not recorded"]


def test_numbering_offsets_and_party_registry_ids() -> None:
    units = MemoryUnits()
    numbering = Numbering(party_registries={"GHA": "GHA02"}, serial_offsets={"verra": 10**10})
    event = RegistryEvent.model_validate(envelope(issue(7, 9, [NDC_ONLY]), project_id="GH-1"))
    (action,) = itmo_effect(event, units, numbering).actions
    assert str(action.first_id) == "CA0002-GHA02-GHA-10000000007-2024"
    assert parse(str(action.last_id)).serial == 10**10 + 9
    assert (action.unit_first, action.unit_last) == (7, 9)


def test_action_ids_are_deterministic_and_distinct() -> None:
    a, b = Story(), Story()
    for story in (a, b):
        story(issue(1000, 1999, [GHANA_LOA]))
        story(transfer(1000, 1399, "ch-buyer", "CHE"))
    ids = [x.action_id for x in a.units.actions]
    assert ids == [x.action_id for x in b.units.actions]
    assert len(set(ids)) == len(ids) == 4


@pytest.mark.parametrize("text", ["CA1-GHA01-GHA-1-2024", "CA0001-GHA1-GHA-1-2024", "x"])
def test_malformed_identifiers_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an ITMO unique identifier"):
        parse(text)


def test_states_are_live_only_before_use() -> None:
    assert [s.value for s in ItmoState if s.live] == ["AUTHORIZED", "FIRST_TRANSFERRED"]


CORSIA_ONLY = {"kind": "CORSIA_ELIGIBLE", "text": "CORSIA eligible unit"}


class AskingView(MemoryUnits):
    """The rules' in-memory view, noting every range the rules ask it about."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: dict[str, list[tuple[str, str, int, int]]] = {"blocks": [], "issuances": []}

    def article6_blocks(self, registry_id: str, series: str, start: int, end: int) -> list[Any]:
        self.asked["blocks"].append((registry_id, series, start, end))
        return super().article6_blocks(registry_id, series, start, end)

    def issuances(self, registry_id: str, series: str, start: int, end: int) -> list[Any]:
        self.asked["issuances"].append((registry_id, series, start, end))
        return super().issuances(registry_id, series, start, end)


def _within(asked: tuple[str, str, int, int], told: tuple[str, str, int, int] | None) -> bool:
    return told is not None and asked[:2] == told[:2] and told[2] <= asked[2] <= asked[3] <= told[3]


def test_units_asked_names_everything_the_rules_ask_about() -> None:
    """What the store reads ahead for a batch comes from ``units_asked``: anything the
    rules then ask about outside it costs a query per event (correct, but slow), and a
    prediction wider than needed reads for nothing. Over a realistic accepted stream
    and a revocation story, every range asked lies within the event's prediction, and
    each predicted kind of question is asked by some event."""
    from adapters.national.rules import units_asked
    from gateway.contract.codec import default_codec
    from ops.bench_national import accepted_stream

    codec = default_codec()
    stream = [RegistryEvent.from_avro(codec.decode(m.value)) for m in accepted_stream(1500)]
    stream += [
        RegistryEvent.model_validate(
            envelope(e, event_id=f"rev-{i}", sequence=i + 1, project_id="GH-1")
        )
        for i, e in enumerate(
            [
                issue(5_000_000, 5_000_099, []),
                label("AuthorizationLabelApplied", 5_000_000, 5_000_099, NDC_ONLY),
                label("AuthorizationLabelRevoked", 5_000_000, 5_000_049, NDC_ONLY),
                label("AuthorizationLabelApplied", 5_000_000, 5_000_009, CORSIA_ONLY),
            ]
        )
    ]
    view, seen = AskingView(), {"blocks": 0, "issuances": 0}
    kinds: set[str] = set()
    for event in stream:
        blocks, issuances = units_asked(event)
        view.asked = {"blocks": [], "issuances": []}
        view.apply(event.registry_id, itmo_effect(event, view, Numbering()))
        for asked in view.asked["blocks"]:
            assert _within(asked, blocks), (event.event_type, asked, blocks)
        for asked in view.asked["issuances"]:
            assert _within(asked, issuances), (event.event_type, asked, issuances)
        seen["blocks"] += bool(view.asked["blocks"])
        seen["issuances"] += bool(view.asked["issuances"])
        kinds.add(event.event_type)
        if blocks is not None and not view.asked["blocks"]:
            pytest.fail(f"{event.event_type} predicted to ask about blocks but did not")
    assert kinds == set(EVENT_TYPES)
    assert seen["blocks"] > 500 and seen["issuances"] > 50
