"""Deterministic streams of ITMO actions for the international adapter's tests and
benchmark: authorizations by Ghana, first transfers (at authorization, or to
Switzerland with its acquisition), uses for CORSIA and towards Switzerland's NDC,
cancellations, revocations — and some the registry must refuse (double use, unknown
ITMOs), so business rejections are exercised too. In order, they are consistent."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable

from gateway.contract.itmo import ActionType, ItmoAction, action_id
from gateway.contract.itmo_message import PartySigner, action_headers, encode_action, party_owner
from gateway.contract.keys import KeyRing
from gateway.contract.time import utc_text
from gateway.keystore.private import generate

BLOCK = 100
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _action(
    n: int,
    kind: ActionType,
    party: str,
    lo: int,
    hi: int,
    event: int | None = None,
    **extra: object,
) -> ItmoAction:
    """Action ``n``, caused by registry event ``event`` (by default its own number: the
    two sides of a transfer between Parties share theirs, as the rules make them)."""
    e = n if event is None else event
    moment = utc_text(T0 + dt.timedelta(seconds=e))
    return ItmoAction(
        action_id=action_id("verra", f"e{e}", kind, party, "", lo),
        party=party,
        action_type=kind,
        subtype=None,
        occurred_at=moment,
        event_id=f"e{e}",
        registry_id="verra",
        project_id=f"P{lo // BLOCK}",
        cooperative_approach="CA0001",
        authorization_id="GHA-LoA-1",
        first_transferring_party="GHA",
        party_registry="GHA01",
        serial_first=lo,
        serial_last=hi,
        vintage=2024,
        series="",
        unit_first=lo,
        unit_last=hi,
        quantity=hi - lo + 1,
        purposes="NDC and OIMP",
        first_transfer_definition=None,
        **extra,  # type: ignore[arg-type]
    )


def action_stream(n: int, seed: int = 11) -> list[ItmoAction]:
    """``n`` actions; about 3 % are meant to be refused by the registry."""
    rng = random.Random(seed)
    out: list[ItmoAction] = []
    block = 0
    while len(out) < n:
        lo = block * BLOCK
        block += 1
        mid = lo + rng.randrange(10, BLOCK - 10)
        hi = lo + BLOCK - 1
        out.append(_action(len(out), ActionType.AUTHORIZATION, "GHA", lo, hi))
        roll = rng.random()
        if roll < 0.5:  # first transfer to Switzerland of the first part, which it uses
            out.append(
                _action(len(out), ActionType.FIRST_TRANSFER, "GHA", lo, mid, acquiring_party="CHE")
            )
            out.append(
                _action(len(out), ActionType.ACQUISITION, "CHE", lo, mid, event=len(out) - 1,
                        transferring_party="GHA")
            )  # fmt: skip
            out.append(
                _action(
                    len(out), ActionType.USE_NDC, "CHE", lo, mid, using_party="CHE", ndc_year=2026
                )
            )
            out.append(
                _action(len(out), ActionType.USE_OIMP, "GHA", mid + 1, hi, oimp_purpose="CORSIA")
            )
        elif roll < 0.8:  # first transfer at authorization, then CORSIA and a cancellation
            out.append(_action(len(out), ActionType.FIRST_TRANSFER, "GHA", lo, hi))
            out.append(
                _action(len(out), ActionType.USE_OIMP, "GHA", lo, mid, oimp_purpose="CORSIA")
            )
            out.append(_action(len(out), ActionType.VOLUNTARY_CANCELLATION, "GHA", mid + 1, hi))
        elif roll < 0.95:  # revoked before first transfer
            out.append(_action(len(out), ActionType.LABEL_REVOCATION, "GHA", lo, hi))
        else:  # refused: used twice, and units the registry never saw
            out.append(_action(len(out), ActionType.USE_OIMP, "GHA", lo, hi, oimp_purpose="X"))
            out.append(_action(len(out), ActionType.USE_OIMP, "GHA", lo, hi, oimp_purpose="Y"))
            out.append(_action(len(out), ActionType.CANCELLATION, "GHA", 10**9, 10**9 + 5))
    return out[:n]


def party_keys(parties: Iterable[str]) -> tuple[dict[str, PartySigner], KeyRing]:
    """A signing key per Party (valid from 2016, before any generated action) and the
    trust store that checks them."""
    since = dt.datetime(2016, 1, 1, tzinfo=dt.UTC)
    signers, records = {}, []
    for party in parties:
        private, record = generate(party_owner(party), since)
        signers[party] = PartySigner(party, record.key_id, private)
        records.append(record)
    return signers, KeyRing(records)


def signed_actions(
    actions: list[ItmoAction], signers: dict[str, PartySigner]
) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """(key, value, headers) of each action as its Party's national adapter emits it."""
    out = []
    for a in actions:
        value = encode_action(a)
        out.append(
            (a.party.encode(), value, [*action_headers(a), *signers[a.party].headers(value)])
        )
    return out
