"""An in-memory view of the adapter's units, for the rules' tests and dry runs."""

from __future__ import annotations

from typing import TypeVar

from adapters.national.rules import Effect, Numbering, letter_effect
from adapters.national.units import Article6Block, Issuance, ItmoState
from gateway.contract.authorization import Authorizations, PartyAuthorization
from gateway.contract.itmo import ItmoAction

T = TypeVar("T", Article6Block, Issuance)


def _overlapping(items: list[T], start: int, end: int) -> list[T]:
    return sorted((b for b in items if b.start <= end and b.end >= start), key=lambda b: b.start)


class MemoryUnits:
    """``letters``: the host Parties' letters in force (None: not required)."""

    def __init__(self, letters: dict[tuple[str, str], PartyAuthorization] | None = None) -> None:
        self.in_force = letters
        self.blocks: list[Article6Block] = []
        self.issued: list[Issuance] = []
        self.accounts: dict[tuple[str, str], str] = {}
        self.actions: list[ItmoAction] = []

    def article6_blocks(
        self, registry_id: str, series: str, start: int, end: int
    ) -> list[Article6Block]:
        mine = [b for b in self.blocks if (b.registry_id, b.series) == (registry_id, series)]
        return _overlapping(mine, start, end)

    def issuances(self, registry_id: str, series: str, start: int, end: int) -> list[Issuance]:
        mine = [i for i in self.issued if (i.registry_id, i.series) == (registry_id, series)]
        return _overlapping(mine, start, end)

    def account_party(self, registry_id: str, account: str) -> str | None:
        return self.accounts.get((registry_id, account))

    def letters(self) -> Authorizations | None:
        return self.in_force

    def blocks_of_host(self, host_party: str, states: tuple[ItmoState, ...]) -> list[Article6Block]:
        mine = [b for b in self.blocks if b.auth.host_party == host_party and b.state in states]
        return sorted(mine, key=lambda b: (b.registry_id, b.series, b.start))

    def take_letter(self, letter: PartyAuthorization) -> Effect:
        """A letter arrives: it is in force from now on; its effect is applied."""
        if self.in_force is None:
            self.in_force = {}
        self.in_force[letter.key] = letter
        effect = letter_effect(letter, self, Numbering())
        self.apply("", effect)
        return effect

    def apply(self, registry_id: str, effect: Effect) -> None:
        for b in effect.remove:
            self.blocks.remove(b)
        self.blocks += effect.add
        if effect.issuance:
            self.issued.append(effect.issuance)
        for account, party in effect.accounts.items():
            self.accounts[registry_id, account] = party
        self.actions += effect.actions
