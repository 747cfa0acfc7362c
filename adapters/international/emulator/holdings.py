"""What an international registry holds for each Party, as ranges of ITMO serials, and
the business rules it applies to an action. Pure: the emulator serves it over HTTP, and
tests replay actions through it to know the state to expect.

The interface of the UNFCCC international registry is not published
(``shared/research/article6-formats.md`` §3.2, [U]); this is our reading of the AEF
actions as registry operations:

- **authorization** puts the ITMOs in the host Party's holding;
- **first transfer** and **transfer** need the ITMOs in the transferring Party's holding;
  to another Party they move there; a first transfer without an acquiring Party (first
  transfer defined as authorization, issuance, use or cancellation) changes no holding;
- **acquisition** is the acquiring Party's acknowledgement: recorded, no movement (the
  transfer moved the units; the two arrive from different Parties in no set order);
- **use** and **cancellation** need the ITMOs in the Party's holding and retire them;
- **label revocation** takes ITMOs that were never first transferred out of the holding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Series = tuple[str, str, str, int]  # cooperative approach, Party registry, first Party, vintage


class Refused(Exception):
    """A business rejection: the registry answers 422 with this code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _cut(ranges: list[tuple[int, int]], lo: int, hi: int) -> list[tuple[int, int]]:
    out = []
    for a, b in ranges:
        if b < lo or a > hi:
            out.append((a, b))
            continue
        if a < lo:
            out.append((a, lo - 1))
        if b > hi:
            out.append((hi + 1, b))
    return out


def _covers(ranges: list[tuple[int, int]], lo: int, hi: int) -> bool:
    need = lo
    for a, b in sorted(ranges):
        if a <= need <= b:
            need = b + 1
            if need > hi:
                return True
    return False


@dataclass
class Registry:
    """Holdings and used ITMOs per Party and serial series."""

    held: dict[tuple[str, Series], list[tuple[int, int]]] = field(default_factory=dict)
    used: dict[Series, list[tuple[int, int]]] = field(default_factory=dict)
    transferred: dict[Series, list[tuple[int, int]]] = field(default_factory=dict)
    recorded: dict[str, int] = field(default_factory=dict)  # action type → count

    def _series(self, body: dict[str, Any]) -> tuple[Series, int, int]:
        try:
            series = (
                str(body["cooperative_approach"]),
                str(body["party_registry"]),
                str(body["first_transferring_party"]),
                int(body["vintage"]),
            )
            lo, hi = int(body["serial_first"]), int(body["serial_last"])
        except (KeyError, TypeError, ValueError) as exc:
            raise Refused("invalid_action", f"missing or malformed field: {exc}") from None
        if lo > hi or lo < 0:
            raise Refused("invalid_action", f"serial range {lo}-{hi} is empty or negative")
        return series, lo, hi

    def _take(self, party: str, series: Series, lo: int, hi: int) -> None:
        mine = self.held.get((party, series), [])
        if not _covers(mine, lo, hi):
            if any(a <= hi and b >= lo for a, b in self.used.get(series, [])):
                raise Refused("already_used", f"ITMOs in {lo}-{hi} were already used or cancelled")
            known = any(
                a <= hi and b >= lo
                for (_, s), ranges in self.held.items()
                if s == series
                for a, b in ranges
            )
            code = "insufficient_holding" if known else "unknown_itmo"
            raise Refused(code, f"{party} does not hold ITMOs {lo}-{hi}")
        self.held[(party, series)] = _cut(mine, lo, hi)

    def _give(self, party: str, series: Series, lo: int, hi: int) -> None:
        self.held.setdefault((party, series), []).append((lo, hi))
        self.held[(party, series)].sort()

    def apply(self, party: str, action_type: str, body: dict[str, Any]) -> None:
        """Apply one action for ``party`` or raise :class:`Refused`."""
        series, lo, hi = self._series(body)
        if action_type == "AUTHORIZATION":
            if party != series[2]:
                raise Refused("invalid_action", "only the first transferring Party authorizes")
            for (_, s), ranges in self.held.items():
                if s == series and any(a <= hi and b >= lo for a, b in ranges):
                    raise Refused("invalid_action", f"ITMOs {lo}-{hi} exist already")
            self._give(party, series, lo, hi)
        elif action_type in ("FIRST_TRANSFER", "TRANSFER"):
            acquiring = body.get("acquiring_party")
            if action_type == "FIRST_TRANSFER" and _covers(
                self.transferred.get(series, []), lo, hi
            ):
                raise Refused("invalid_action", f"ITMOs {lo}-{hi} were first transferred already")
            if acquiring and acquiring != party:
                self._take(party, series, lo, hi)
                self._give(str(acquiring), series, lo, hi)
            elif not _covers(self.held.get((party, series), []), lo, hi):
                raise Refused("insufficient_holding", f"{party} does not hold ITMOs {lo}-{hi}")
            if action_type == "FIRST_TRANSFER":
                self.transferred.setdefault(series, []).append((lo, hi))
        elif action_type == "ACQUISITION":
            pass  # an acknowledgement: the transfer moved the units
        elif action_type in ("USE_NDC", "USE_OIMP", "CANCELLATION", "VOLUNTARY_CANCELLATION"):
            self._take(party, series, lo, hi)
            self.used.setdefault(series, []).append((lo, hi))
        elif action_type == "LABEL_REVOCATION":
            if not _covers(self.transferred.get(series, []), lo, hi):
                self._take(party, series, lo, hi)
        else:
            raise Refused("invalid_action", f"unknown action type {action_type!r}")
        self.recorded[action_type] = self.recorded.get(action_type, 0) + 1

    def holdings(self, party: str) -> list[dict[str, Any]]:
        out = []
        for (owner, series), ranges in sorted(self.held.items()):
            if owner != party:
                continue
            for lo, hi in _merge(ranges):
                out.append(
                    {
                        "cooperative_approach": series[0],
                        "party_registry": series[1],
                        "first_transferring_party": series[2],
                        "vintage": series[3],
                        "serial_first": lo,
                        "serial_last": hi,
                        "quantity": hi - lo + 1,
                    }
                )
        return out

    def state(self) -> dict[str, Any]:
        """Everything, canonically: for comparing two registries."""
        parties = sorted({p for p, _ in self.held})
        return {
            "holdings": {p: self.holdings(p) for p in parties},
            "used": {"/".join(map(str, s)): _merge(r) for s, r in sorted(self.used.items())},
            "recorded": dict(sorted(self.recorded.items())),
        }


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
