"""The ITMO unique identifier (decision 6/CMA.4, annex I, para 5).

At minimum it names the cooperative approach, the originating Party registry, the first
transferring Party, a serial number and the vintage. We write the components in that
order, joined by hyphens, as the public AEF syntax checker expects:
``CA0001-GHA01-GHA-1000001-2023`` (see ``../shared/research/article6-formats.md`` §2;
the pattern is [S], not an official example).

Serial numbers are allocated from the underlying units, not from a counter: the ITMO
serial of unit *n* of a crediting-program registry is *n* plus that registry's configured
offset (default 0). So identifiers do not depend on the order in which partitions are
read, a replay rebuilds the very same identifiers, a block split splits its identifier
range at the same place, and any ITMO can be traced to its program unit by subtraction.
Give registries whose unit numbers overlap under one cooperative approach different
offsets (``CRG_ITMO_SERIAL_OFFSETS``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PATTERN = re.compile(
    r"^(?P<ca>CA\d{4})-(?P<registry>[A-Z]{3}\d{2})-(?P<party>[A-Z]{3})-(?P<serial>\d+)-(?P<vintage>\d{4})$"
)


@dataclass(frozen=True, order=True)
class ItmoId:
    cooperative_approach: str  # CANNNN
    party_registry: str  # originating Party registry: alpha-3 + two digits, e.g. GHA01
    first_transferring_party: str  # alpha-3
    serial: int
    vintage: int

    def __str__(self) -> str:
        return (
            f"{self.cooperative_approach}-{self.party_registry}-"
            f"{self.first_transferring_party}-{self.serial}-{self.vintage}"
        )

    def with_serial(self, serial: int) -> ItmoId:
        return ItmoId(
            self.cooperative_approach,
            self.party_registry,
            self.first_transferring_party,
            serial,
            self.vintage,
        )


def party_registry_id(party: str, number: int = 1) -> str:
    """The Party ITMO registry id: alpha-3 and two digits (``GHA01``)."""
    if not re.fullmatch(r"[A-Z]{3}", party) or not 0 <= number <= 99:
        raise ValueError(f"no Party registry id for {party!r} / {number}")
    return f"{party}{number:02d}"


def parse(text: str) -> ItmoId:
    match = PATTERN.match(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not an ITMO unique identifier (CANNNN-AAA99-AAA-serial-YYYY)"
        )
    return ItmoId(
        match["ca"], match["registry"], match["party"], int(match["serial"]), int(match["vintage"])
    )
