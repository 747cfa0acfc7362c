"""Event sources for ``crg publish``: JSON lines, and registries' public export files.

A source yields, in order, either a :class:`Draft` (the JSON form of one event,
perhaps without its sequence number) or a :class:`Problem` (a record that cannot
become an event, with where it is and why). Nothing is dropped without a Problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Draft:
    location: str  # e.g. "line 12", "row 7"
    fields: dict[str, Any]
    records: tuple[str, ...] = ()  # the source records this event was built from
    notes: tuple[str, ...] = ()  # what was read with a caveat; reported, not an error


@dataclass(frozen=True)
class Problem:
    location: str
    message: str


SourceItem = Draft | Problem
