"""The ledger rules on hand-built scenarios: every ledger reason code, and block splits."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from gateway.contract.models import RegistryEvent
from gateway.contract.reasons import Reason
from gateway.service.ledger.blocks import Status
from gateway.service.ledger.memory import MemoryLedger
from gateway.service.ledger.rules import Change, Rejection, decide
from tests.factories import (
    block,
    cancelled,
    envelope,
    issued,
    label_applied,
    label_revoked,
    retired,
)
from tests.factories import transferred as transfer

A6 = {
    "kind": "ARTICLE6_AUTHORIZATION",
    "text": "A6 NDC",
    "host_party": "RWA",
    "authorized_uses": [{"purpose": "NDC"}],
    "letter_of_authorization": "LoA-1",
}


def ev(payload: dict[str, Any], n: int = 1, **kw: Any) -> RegistryEvent:
    return RegistryEvent.model_validate(envelope(payload, event_id=f"e{n}", sequence=n, **kw))


def run(ledger: MemoryLedger, event: RegistryEvent) -> Change | Rejection:
    decision = decide(event, ledger)
    if isinstance(decision, Change):
        ledger.apply(decision)
    return decision


def layout(ledger: MemoryLedger) -> list[tuple[int, int, str, str, int]]:
    return [(b.start, b.end, b.account, b.status.value, len(b.labels)) for b in ledger.blocks()]


@pytest.fixture
def ledger() -> MemoryLedger:
    ledger = MemoryLedger()
    assert isinstance(run(ledger, ev(issued(labels=[]))), Change)  # units 1000-1999 to proponent
    return ledger


def rejected(decision: Change | Rejection, reason: Reason) -> str:
    assert isinstance(decision, Rejection), decision
    assert decision.reason == reason
    return decision.message


def test_issuance_creates_one_active_block(ledger: MemoryLedger) -> None:
    assert layout(ledger) == [(1000, 1999, "acct-proponent", "active", 0)]
    (b,) = ledger.blocks()
    assert (b.project_id, b.host_party, b.vintage, b.issued_by) == ("4150", "RWA", 2024, "e1")


@pytest.mark.parametrize(
    "start,end", [(1000, 1999), (1999, 2500), (500, 1000), (0, 5000), (1500, 1500)]
)
def test_overlapping_issuance_is_double_issuance(
    ledger: MemoryLedger, start: int, end: int
) -> None:
    again = ev(issued(serial_block=block(start, end), quantity=end - start + 1, labels=[]), 2)
    assert "double issuance" in rejected(run(ledger, again), Reason.ISSUANCE_OVERLAP)


def test_adjacent_issuance_and_other_series_are_fine(ledger: MemoryLedger) -> None:
    assert isinstance(
        run(ledger, ev(issued(serial_block=block(2000, 2009), quantity=10, labels=[]), 2)), Change
    )
    other_series = {**block(), "series": "GS1-1-UG-GS11236-16-2024-30307"}
    assert isinstance(run(ledger, ev(issued(serial_block=other_series, labels=[]), 3)), Change)


def test_overlap_with_retired_units_still_counts_as_ever_issued(ledger: MemoryLedger) -> None:
    run(ledger, ev(retired(serial_block=block(1000, 1999), quantity=1000), 2))
    again = ev(issued(labels=[]), 3)
    rejected(run(ledger, again), Reason.ISSUANCE_OVERLAP)


def test_article6_label_from_another_party_at_issuance() -> None:
    label = {**A6, "host_party": "GHA"}
    msg = rejected(run(MemoryLedger(), ev(issued(labels=[label]))), Reason.LABEL_HOST_MISMATCH)
    assert "GHA" in msg and "RWA" in msg


def test_partial_transfer_splits_the_block_three_ways(ledger: MemoryLedger) -> None:
    run(ledger, ev(transfer(serial_block=block(1200, 1299), quantity=100), 2))
    assert layout(ledger) == [
        (1000, 1199, "acct-proponent", "active", 0),
        (1200, 1299, "acct-buyer", "active", 0),
        (1300, 1999, "acct-proponent", "active", 0),
    ]


def test_transfer_across_two_blocks_of_the_same_holder(ledger: MemoryLedger) -> None:
    run(ledger, ev(transfer(serial_block=block(1200, 1299), quantity=100), 2))
    run(
        ledger,
        ev(
            transfer(
                serial_block=block(1200, 1299),
                quantity=100,
                from_account="acct-buyer",
                to_account="acct-proponent",
            ),
            3,
        ),
    )
    run(ledger, ev(transfer(serial_block=block(1150, 1349), quantity=200), 4))
    assert layout(ledger) == [
        (1000, 1149, "acct-proponent", "active", 0),
        (1150, 1199, "acct-buyer", "active", 0),
        (1200, 1299, "acct-buyer", "active", 0),
        (1300, 1349, "acct-buyer", "active", 0),
        (1350, 1999, "acct-proponent", "active", 0),
    ]


def test_units_never_issued(ledger: MemoryLedger) -> None:
    msg = rejected(
        run(ledger, ev(transfer(serial_block=block(1990, 2009), quantity=20), 2)),
        Reason.UNITS_NOT_FOUND,
    )
    assert msg.startswith("10 of the 20 units")
    rejected(
        run(ledger, ev(retired(serial_block=block(5000, 5009), quantity=10), 2)),
        Reason.UNITS_NOT_FOUND,
    )


def test_units_of_another_project(ledger: MemoryLedger) -> None:
    other = ev(transfer(), 2, project_id="999")
    assert "belong to project 4150" in rejected(run(ledger, other), Reason.PROJECT_MISMATCH)


def test_units_not_held_by_the_named_account(ledger: MemoryLedger) -> None:
    run(ledger, ev(transfer(), 2))  # 1000-1099 to acct-buyer
    msg = rejected(
        run(ledger, ev(retired(serial_block=block(1050, 1149), quantity=100), 3)),
        Reason.UNITS_NOT_HELD,
    )
    assert "acct-buyer" in msg


def test_second_retirement_is_double_use(ledger: MemoryLedger) -> None:
    assert isinstance(run(ledger, ev(retired(), 2)), Change)
    msg = rejected(run(ledger, ev(retired(), 3)), Reason.UNITS_NOT_ACTIVE)
    assert "double use" in msg
    rejected(
        run(ledger, ev(transfer(serial_block=block(1100, 1199), quantity=100), 4)),
        Reason.UNITS_NOT_ACTIVE,
    )


def test_cancelled_units_are_not_active(ledger: MemoryLedger) -> None:
    run(ledger, ev(cancelled(), 2))  # 1200-1209
    rejected(
        run(ledger, ev(retired(serial_block=block(1200, 1209), quantity=10), 3)),
        Reason.UNITS_NOT_ACTIVE,
    )


def test_range_across_retired_and_active_units_is_mixed(ledger: MemoryLedger) -> None:
    run(ledger, ev(retired(), 2))  # 1100-1199 retired
    msg = rejected(
        run(ledger, ev(transfer(serial_block=block(1150, 1249), quantity=100), 3)),
        Reason.UNITS_MIXED_STATE,
    )
    assert "retired" in msg


def test_label_applied_to_part_and_revoked(ledger: MemoryLedger) -> None:
    run(ledger, ev(label_applied(serial_block=block(1000, 1499), quantity=500, label=A6), 2))
    assert layout(ledger) == [
        (1000, 1499, "acct-proponent", "active", 1),
        (1500, 1999, "acct-proponent", "active", 0),
    ]
    msg = rejected(run(ledger, ev(label_revoked(label=A6), 3)), Reason.LABEL_NOT_PRESENT)
    assert "1500-1999" in msg
    restated = {**A6, "authorized_uses": [{"purpose": "OIMP"}]}  # same label, uses restated
    run(ledger, ev(label_revoked(serial_block=block(1000, 1499), quantity=500, label=restated), 4))
    assert [n for *_, n in layout(ledger)] == [0, 0]


def test_label_from_another_party_after_issuance(ledger: MemoryLedger) -> None:
    rejected(
        run(ledger, ev(label_applied(label={**A6, "host_party": "CHE"}), 2)),
        Reason.LABEL_HOST_MISMATCH,
    )


@pytest.mark.parametrize("use", [retired, cancelled])
def test_no_label_on_units_already_retired_or_cancelled(ledger: MemoryLedger, use: Any) -> None:
    """Units used for a claim (or cancelled) never become authorized afterwards; revoking a
    label they carried stays possible, and their later history is unaffected."""
    run(ledger, ev(label_applied(serial_block=block(1000, 1099), quantity=100, label=A6), 2))
    assert isinstance(run(ledger, ev(use(serial_block=block(), quantity=1000), 3)), Change)
    before = layout(ledger)
    msg = rejected(run(ledger, ev(label_applied(label=A6), 4)), Reason.UNITS_NOT_ACTIVE)
    assert "cannot label" in msg
    assert layout(ledger) == before
    revoke = label_revoked(serial_block=block(1000, 1099), quantity=100, label=A6)
    assert isinstance(run(ledger, ev(revoke, 5)), Change)


def test_no_label_on_a_range_mixing_active_and_retired_units(ledger: MemoryLedger) -> None:
    run(ledger, ev(retired(serial_block=block(1500, 1999), quantity=500), 2))
    rejected(run(ledger, ev(label_applied(label=A6), 3)), Reason.UNITS_MIXED_STATE)
    part = label_applied(serial_block=block(1000, 1499), quantity=500, label=A6)
    assert isinstance(run(ledger, ev(part, 4)), Change)  # the active part may be labelled


@pytest.mark.parametrize("named", ["RWA", "KEN"])
def test_a_range_of_two_host_parties_takes_no_label_of_either(named: str) -> None:
    """One project's serial range holds units of two host countries (as in Verra's
    exports): a label naming either fails on the other's block, whichever comes first."""
    ledger = MemoryLedger()
    rwanda = issued(labels=[], serial_block=block(1000, 1499), quantity=500)
    kenya = issued(labels=[], serial_block=block(1500, 1999), quantity=500)
    kenya["project"] = {**kenya["project"], "host_party": "KEN"}
    run(ledger, ev(rwanda, 1))
    run(ledger, ev(kenya, 2))
    label = {**A6, "host_party": named}
    msg = rejected(run(ledger, ev(label_applied(label=label), 3)), Reason.LABEL_HOST_MISMATCH)
    assert ({"RWA", "KEN"} - {named}).pop() in msg
    own = block(1000, 1499) if named == "RWA" else block(1500, 1999)
    alone = label_applied(serial_block=own, quantity=500, label=label)
    assert isinstance(run(ledger, ev(alone, 4)), Change)  # its own host's block alone: fine


def test_labels_travel_with_units(ledger: MemoryLedger) -> None:
    run(ledger, ev(label_applied(label=A6), 2))
    run(ledger, ev(transfer(), 3))
    assert all(b.labels for b in ledger.blocks())
    (moved,) = [b for b in ledger.blocks() if b.account == "acct-buyer"]
    assert moved.label_dicts()[0]["letter_of_authorization"] == "LoA-1"


def test_blocks_always_cover_exactly_what_was_issued(ledger: MemoryLedger) -> None:
    for n, (s, e) in enumerate([(1000, 1009), (1500, 1999), (1010, 1499)], start=2):
        run(ledger, ev(transfer(serial_block=block(s, e), quantity=e - s + 1), n))
    blocks = ledger.blocks()
    assert blocks[0].start == 1000 and blocks[-1].end == 1999
    assert all(a.end + 1 == b.start for a, b in itertools.pairwise(blocks))
    assert {b.status for b in blocks} == {Status.ACTIVE}
