"""The judge's outcome as a value, without a broker or a database."""

from __future__ import annotations

from gateway.contract.codec import default_codec
from gateway.contract.keys import KeyRing
from gateway.contract.message import EventSigner, verify_and_decode
from gateway.service.judge import Item, ask, judge
from gateway.service.ledger.memory import MemoryLedger
from gateway.streaming.process import Incoming
from gateway.streaming.topics import Topics, key_partition
from tests.conftest import RegistryKey
from tests.factories import event

KEY = RegistryKey("verra")


def item(partition: int) -> Item:
    codec = default_codec()
    signed = EventSigner(codec, KEY.key_id, KEY.private).sign_event(event())
    decoded = verify_and_decode(signed.value, signed.headers, KeyRing([KEY.record]), codec)
    return Incoming(signed.value, list(signed.headers), signed.key, "raw", partition, 0), decoded


def test_an_event_off_its_key_s_partition_is_rejected_and_changes_nothing() -> None:
    own = key_partition(b"verra/4150", 6)
    for partition, verdict, reason in (
        ((own + 1) % 6, "rejected", "partition_not_of_key"),
        (own, "accepted", None),
    ):
        ledger, items = MemoryLedger(), [item(partition)]
        outcome = judge(items, ledger.snapshot(ask(items, 0.0, range(6))), Topics())
        (v,) = [v for _, v in outcome.verdicts]
        assert (v.outcome, v.reason.value if v.reason else None) == (verdict, reason)
        assert len(outcome.added) == (verdict == "accepted")
        assert [m.topic for m in outcome.outbox] == [
            Topics().verified if verdict == "accepted" else Topics().rejected
        ]


def test_unknown_partitions_are_not_checked() -> None:
    items = [item(key_partition(b"verra/4150", 6) + 1)]
    outcome = judge(items, MemoryLedger().snapshot(ask(items, 0.0)), Topics())
    assert [v.outcome for _, v in outcome.verdicts] == ["accepted"]
