"""The benchmarks' load: a registry stream is what registries send (nearly all of it
accepted, a set share of mistakes); the hostile stream keeps the ledger refusing."""

from __future__ import annotations

from collections import Counter

from gateway.contract.codec import default_codec
from gateway.contract.message import EventSigner
from gateway.contract.models import RegistryEvent
from gateway.service.ledger.memory import MemoryLedger
from gateway.service.ledger.rules import Change, decide
from ops.loadgen import mixed_stream, registry_stream
from tests.conftest import RegistryKey


def _judge(signers: dict[str, EventSigner], stream: list) -> tuple[Counter[str], Counter[str]]:
    """(event types, outcomes by reason) of a stream judged in order by the ledger rules."""
    codec, ledger = default_codec(), MemoryLedger()
    types: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for message in stream:
        event = RegistryEvent.from_avro(codec.decode(message.value))
        types[event.event_type] += 1
        decision = decide(event, ledger)
        if isinstance(decision, Change):
            ledger.apply(decision)
            outcomes["accepted"] += 1
        else:
            outcomes[decision.reason.value] += 1
    return types, outcomes


def _signers() -> dict[str, EventSigner]:
    codec = default_codec()
    keys = {r: RegistryKey(r) for r in ("verra", "gold")}
    return {r: EventSigner(codec, k.key_id, k.private) for r, k in keys.items()}


def test_a_registry_stream_is_nearly_all_accepted_with_its_share_of_mistakes() -> None:
    signers = _signers()
    stream = registry_stream(signers, 4000, projects=10, mistakes=0.02)
    types, outcomes = _judge(signers, stream)
    assert len(stream) == 4000
    assert set(types) == {
        "UnitsIssued",
        "UnitsTransferred",
        "AuthorizationLabelApplied",
        "UnitsRetired",
        "UnitsCancelled",
    }
    assert types["UnitsIssued"] > 20  # projects whose units were used up were issued again
    refused = len(stream) - outcomes["accepted"]
    assert set(outcomes) == {"accepted", "units_not_active", "units_not_held"}
    assert 0.01 * len(stream) < refused < 0.03 * len(stream)


def test_a_registry_stream_without_mistakes_is_all_accepted() -> None:
    signers = _signers()
    _, outcomes = _judge(signers, registry_stream(signers, 2000, projects=5, mistakes=0.0))
    assert outcomes == {"accepted": 2000}


def test_the_hostile_stream_is_mostly_refused() -> None:
    signers = _signers()
    _, outcomes = _judge(signers, mixed_stream(signers, 2000, projects=5))
    assert outcomes["accepted"] < 1000
    assert {"units_not_held", "units_mixed_state", "units_not_active"} <= set(outcomes)
