"""What the adapter remembers of the crediting programs' units: every issuance (for the
vintage and host Party of units labelled later), the Party of accounts whose
jurisdiction events have named, and the Article 6 blocks — units under an Article 6
authorization — with their ITMO state. Blocks split like the gateway's ledger blocks."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gateway.contract.authorization import PartyAuthorization


class ItmoState(StrEnum):
    #: a registry labelled the units, no letter of their host Party confirms it (yet): no
    #: ITMO, no action; a letter that arrives later confirms it (rules.confirm_claims)
    CLAIMED = "CLAIMED"
    AUTHORIZED = "AUTHORIZED"  # authorized by the host Party, not yet first transferred
    FIRST_TRANSFERRED = "FIRST_TRANSFERRED"  # ITMOs: a corresponding adjustment is due
    USED = "USED"
    CANCELLED = "CANCELLED"
    REVOKED = "REVOKED"  # authorization withdrawn before first transfer: no longer ITMOs
    #: a claim that ended before any letter confirmed it: the units were used or
    #: cancelled, or the registry withdrew its label
    LAPSED = "LAPSED"

    @property
    def live(self) -> bool:
        return self in (ItmoState.AUTHORIZED, ItmoState.FIRST_TRANSFERRED)


@dataclass(frozen=True)
class Issuance:
    registry_id: str
    series: str
    start: int
    end: int
    project_id: str
    host_party: str
    vintage: int
    unit_type: str


@dataclass(frozen=True)
class Authorization:
    """The Article 6 authorization label carried by a block, as the adapter needs it."""

    host_party: str
    cooperative_approach: str
    authorization_id: str
    purposes: tuple[str, ...]  # NDC, OIMP, OTHER_PURPOSES
    oimp_schemes: tuple[str, ...]
    first_transfer_definition: str | None  # AUTHORIZATION, ISSUANCE, USE_OR_CANCELLATION
    text: str

    @property
    def purposes_text(self) -> str:
        """The AEF 'Purposes for authorization' value (nomenclature 16(b))."""
        aef = {"NDC": "NDC", "OIMP": "OIMP", "OTHER_PURPOSES": "OP"}
        values = [aef[p] for p in ("NDC", "OIMP", "OTHER_PURPOSES") if p in self.purposes]
        return " and ".join(values)


NO_APPROACH = "CA0000"  # a label without a cooperative approach: reported as unknown


def letter_terms(letter: PartyAuthorization) -> str:
    """What a block keeps of the letter that confirmed its label (canonical JSON): the
    letter and the terms the Party set, which the ITMO actions carry."""
    return json.dumps(
        {
            "letter_of_authorization": letter.letter_of_authorization,
            "cooperative_approach": letter.cooperative_approach,
            "authorized_uses": [u.model_dump(mode="json") for u in letter.authorized_uses],
            "first_transfer_definition": letter.first_transfer_definition,
        },
        sort_keys=True,
        separators=(",", ":"),
    )


@functools.lru_cache(maxsize=1024)
def authorization_of(label_json: str, terms: str | None = None) -> Authorization:
    """The authorization of a block: its label, with the terms of the Party's letter
    over the label's own where a letter confirmed it."""
    data: dict[str, Any] = json.loads(label_json)
    if terms is not None:
        data.update(json.loads(terms))
    uses = data.get("authorized_uses") or []
    return Authorization(
        host_party=data["host_party"],
        cooperative_approach=data.get("cooperative_approach") or NO_APPROACH,
        authorization_id=data.get("letter_of_authorization") or data["text"],
        purposes=tuple(sorted({u["purpose"] for u in uses})),
        oimp_schemes=tuple(sorted({u["oimp_scheme"] for u in uses if u.get("oimp_scheme")})),
        first_transfer_definition=data.get("first_transfer_definition"),
        text=data["text"],
    )


@dataclass(frozen=True)
class Article6Block:
    registry_id: str
    series: str
    start: int
    end: int
    project_id: str
    vintage: int
    unit_type: str
    authorization: str  # canonical label JSON (see gateway.contract.labels.label_json)
    state: ItmoState
    holder_party: str  # the Party whose jurisdiction holds the units (the host until moved)
    account: str | None  # the program account holding them, when an event named it
    #: the host Party's letter that confirmed the label (:func:`letter_terms`); None for a
    #: claim, and where letters are not required (``CRG_NATIONAL_LETTERS=off``)
    letter: str | None = None
    claimed_on: str | None = None  # a claim: the day the registry labelled the units

    @property
    def size(self) -> int:
        return self.end - self.start + 1

    @property
    def auth(self) -> Authorization:
        return authorization_of(self.authorization, self.letter)

    def label(self) -> dict[str, Any]:
        return dict(json.loads(self.authorization))

    def piece(self, start: int, end: int) -> Article6Block:
        assert self.start <= start <= end <= self.end
        return self.changed(start=start, end=end)

    def changed(
        self,
        *,
        start: int | None = None,
        end: int | None = None,
        state: ItmoState | None = None,
        holder_party: str | None = None,
        account: str | None = None,
        letter: str | None = None,
        claimed_on: str | None = None,
    ) -> Article6Block:
        return Article6Block(
            self.registry_id,
            self.series,
            self.start if start is None else start,
            self.end if end is None else end,
            self.project_id,
            self.vintage,
            self.unit_type,
            self.authorization,
            self.state if state is None else state,
            self.holder_party if holder_party is None else holder_party,
            self.account if account is None else account,
            self.letter if letter is None else letter,
            self.claimed_on if claimed_on is None else claimed_on,
        )
