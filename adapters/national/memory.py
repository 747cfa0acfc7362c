"""An in-memory view of the adapter's units, for the rules' tests and dry runs."""

from __future__ import annotations

from typing import TypeVar

from adapters.national.rules import Effect
from adapters.national.units import Article6Block, Issuance
from gateway.contract.itmo import ItmoAction

T = TypeVar("T", Article6Block, Issuance)


def _overlapping(items: list[T], start: int, end: int) -> list[T]:
    return sorted((b for b in items if b.start <= end and b.end >= start), key=lambda b: b.start)


class MemoryUnits:
    def __init__(self) -> None:
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

    def apply(self, registry_id: str, effect: Effect) -> None:
        for b in effect.remove:
            self.blocks.remove(b)
        self.blocks += effect.add
        if effect.issuance:
            self.issued.append(effect.issuance)
        for account, party in effect.accounts.items():
            self.accounts[registry_id, account] = party
        self.actions += effect.actions
