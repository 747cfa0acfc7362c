"""A Party's national-registry store: SQLite (default) or PostgreSQL, chosen by URL.

Everything the adapter changes for a batch — the units it knows, the Party's ITMO
actions, the tracking record of each applied event, the consumed offsets and the outbox
of actions to emit — commits in one transaction, so replaying any part of the verified
topic changes nothing already applied (the ``eventsourcing`` library's tracking-record
pattern).

Within a transaction the units work as the gateway's ledger does
(:class:`gateway.ranges.StagedBlocks`): the Article 6 blocks and issuances of a batch's
serial blocks are read in one query each (:meth:`NationalStore.read_ahead`), the rules work on
that copy in memory, and the net changes are written at commit.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from adapters.national.rules import Effect, Numbering, units_asked
from adapters.national.schema import MIGRATIONS
from adapters.national.units import Article6Block, Issuance, ItmoState
from gateway.contract.authorization import PartyAuthorization, decode_authorization
from gateway.contract.itmo import FIELDS, ItmoAction
from gateway.contract.itmo_identifier import ItmoId
from gateway.contract.models import RegistryEvent
from gateway.ranges import NO_RANGE, Range, StagedBlocks
from gateway.storage import open_database
from gateway.storage.database import (
    Database,
    chunks,
    ranges_sql,
    values_list,
)
from gateway.storage.tracking import TransactionalStore

BLOCK_COLUMNS = (
    "registry_id, series, start_no, end_no, project_id, vintage, unit_type, label, state,"
    " holder_party, account, letter, claimed_on"
)
ISSUANCE_COLUMNS = (
    "registry_id, series, start_no, end_no, project_id, host_party, vintage, unit_type"
)
ACTION_COLUMNS = ", ".join(FIELDS)
T = TypeVar("T")


@functools.lru_cache(maxsize=64)
def _blocks_of_ranges(n: int) -> str:
    return ranges_sql("article6_blocks", BLOCK_COLUMNS, n)


@functools.lru_cache(maxsize=64)
def _issuances_of_ranges(n: int) -> str:
    return ranges_sql("issuances", ISSUANCE_COLUMNS, n)


#: the order actions of one event are told in
ACTION_ORDER = "occurred_at, event_id, unit_first, action_type"


def _block(r: Sequence[Any]) -> Article6Block:
    return Article6Block(
        r[0],
        r[1],
        int(r[2]),
        int(r[3]),
        r[4],
        int(r[5]),
        r[6],
        r[7],
        ItmoState(r[8]),
        r[9],
        r[10],
        r[11],
        r[12],
    )


def _block_row(b: Article6Block) -> tuple[Any, ...]:
    """A block as stored, in BLOCK_COLUMNS order."""
    return (
        b.registry_id,
        b.series,
        b.start,
        b.end,
        b.project_id,
        b.vintage,
        b.unit_type,
        b.authorization,
        b.state.value,
        b.holder_party,
        b.account,
        b.letter,
        b.claimed_on,
    )


def _issuance(r: Sequence[Any]) -> Issuance:
    return Issuance(r[0], r[1], int(r[2]), int(r[3]), r[4], r[5], int(r[6]), r[7])


def _issuance_row(i: Issuance) -> tuple[Any, ...]:
    """An issuance as stored, in ISSUANCE_COLUMNS order."""
    return (
        i.registry_id,
        i.series,
        i.start,
        i.end,
        i.project_id,
        i.host_party,
        i.vintage,
        i.unit_type,
    )


def _action(r: Sequence[Any]) -> ItmoAction:
    return ItmoAction.from_row(dict(zip(FIELDS, r, strict=True)))


@dataclass(frozen=True)
class ItmoBlock:
    """A block of a Party's ITMOs as the query API shows it."""

    first_id: str
    last_id: str
    quantity: int
    state: str
    holder_party: str
    account: str | None
    vintage: int
    cooperative_approach: str
    authorization_id: str
    first_transferring_party: str
    registry_id: str
    series: str
    unit_first: int
    unit_last: int
    project_id: str
    cursor: str  # pass as ``after`` for the next page


@dataclass(frozen=True)
class Query:
    """Filters of the ITMO list (all optional)."""

    state: str | None = None
    vintage: int | None = None
    cooperative_approach: str | None = None
    action_type: str | None = None  # blocks that underwent an action of this type
    since: str | None = None  # blocks with an action at or after this time (ISO 8601)
    until: str | None = None  # … before this time
    after: str | None = None  # paging cursor
    limit: int = 100


class NationalStore(TransactionalStore):
    """Open with :func:`open_national_store`. One per Party; not thread-safe."""

    def __init__(self, db: Database, party: str, numbering: Numbering) -> None:
        super().__init__(db)
        self.party = party
        self.numbering = numbering
        #: a registry's Article 6 label makes ITMOs only with a host Party's letter
        #: (the adapter sets it from ``CRG_NATIONAL_LETTERS``)
        self.letters_required = False
        self._letters: dict[tuple[str, str], PartyAuthorization] | None = None
        self._letter_rows: list[tuple[Any, ...]] = []
        # written at commit: no rule reads them back within a transaction
        self._action_rows: list[tuple[Any, ...]] = []
        self._applied_rows: list[tuple[Any, ...]] = []
        self._applied_now: set[tuple[str, str]] = set()  # tracking records queued
        # each account's Party as read or set in this transaction; the ones set, written
        # at commit (the rules read them through account_party, which looks here first)
        self._parties: dict[tuple[str, str], str | None] = {}
        self._parties_set: dict[tuple[str, str], str] = {}
        self._blocks = StagedBlocks[Article6Block]()
        self._issued = StagedBlocks[Issuance]()

    def _begin(self) -> None:
        self._letters, self._letter_rows = None, []
        self._action_rows, self._applied_rows, self._applied_now = [], [], set()
        self._parties, self._parties_set = {}, {}
        self._blocks, self._issued = StagedBlocks(), StagedBlocks()

    def _before_commit(self) -> None:
        self.db.many(  # deletions first: a piece may start where a deleted block started
            "DELETE FROM article6_blocks WHERE registry_id = ? AND series = ? AND start_no = ?",
            list(self._blocks.deleted),
        )
        self.db.many(
            f"INSERT INTO article6_blocks ({BLOCK_COLUMNS}, host_party)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*_block_row(b), b.auth.host_party) for b in self._blocks.added.values()],
        )
        self.db.many(
            f"INSERT INTO issuances ({ISSUANCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [_issuance_row(i) for i in self._issued.added.values()],
        )
        self.db.many(
            "INSERT INTO accounts (registry_id, account, party) VALUES (?, ?, ?)"
            " ON CONFLICT (registry_id, account) DO UPDATE SET party = excluded.party",
            [(r, a, p) for (r, a), p in sorted(self._parties_set.items())],
        )
        placeholders = ", ".join("?" * len(FIELDS))
        self.db.many(
            f"INSERT INTO itmo_actions ({ACTION_COLUMNS}) VALUES ({placeholders})",
            self._action_rows,
        )
        self.db.many(
            "INSERT INTO party_letters (party, letter, version, status, value, source)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (party, letter) DO UPDATE SET"
            " version = excluded.version, status = excluded.status, value = excluded.value,"
            " source = excluded.source",
            self._letter_rows,
        )
        self.db.many(
            "INSERT INTO applied_events (registry_id, event_id, actions, source, applied_at)"
            " VALUES (?, ?, ?, ?, ?)",
            self._applied_rows,
        )

    # -- the units view (rules.UnitsView) ---------------------------------------------------
    def read_ahead(self, events: Iterable[RegistryEvent]) -> None:
        """Read in one query each what the rules will ask about for these events
        (:func:`~.rules.units_asked`): the Article 6 blocks and the issuances sharing
        units with their serial blocks. Only a saving: what was not read ahead is read
        when asked for."""
        self._require_transaction("read_ahead")
        asked = [units_asked(e) for e in events]
        self._blocks.read((b for b, _ in asked if b), self._stored_blocks)
        self._issued.read((i for _, i in asked if i), self._stored_issuances)

    def _stored(
        self, sql: Callable[[int], str], row: Callable[[Sequence[Any]], T], ranges: list[Range]
    ) -> Iterator[T]:
        for chunk in chunks(ranges, NO_RANGE):
            rows = self.db.execute(sql(len(chunk)), [v for r in chunk for v in r]).fetchall()
            yield from (row(r) for r in rows)

    def _stored_blocks(self, ranges: list[Range]) -> Iterator[Article6Block]:
        return self._stored(_blocks_of_ranges, _block, ranges)

    def _stored_issuances(self, ranges: list[Range]) -> Iterator[Issuance]:
        return self._stored(_issuances_of_ranges, _issuance, ranges)

    def article6_blocks(
        self, registry_id: str, series: str, start: int, end: int
    ) -> list[Article6Block]:
        staged = self._blocks if self._in_tx else StagedBlocks[Article6Block]()
        return staged.overlapping((registry_id, series, start, end), self._stored_blocks)

    def issuances(self, registry_id: str, series: str, start: int, end: int) -> list[Issuance]:
        staged = self._issued if self._in_tx else StagedBlocks[Issuance]()
        return staged.overlapping((registry_id, series, start, end), self._stored_issuances)

    def account_party(self, registry_id: str, account: str) -> str | None:
        if (registry_id, account) in self._parties:
            return self._parties[registry_id, account]
        row = self.db.execute(
            "SELECT party FROM accounts WHERE registry_id = ? AND account = ?",
            (registry_id, account),
        ).fetchone()
        party = None if row is None else str(row[0])
        if self._in_tx:  # kept for the transaction, as if read when it began
            self._parties[registry_id, account] = party
        return party

    # -- host Parties' letters -----------------------------------------------------------------
    def letters(self) -> dict[tuple[str, str], PartyAuthorization] | None:
        """The letters recorded, the version in force of each (None: not required)."""
        if not self.letters_required:
            return None
        if self._letters is not None:
            return self._letters
        rows = self.db.execute("SELECT value FROM party_letters").fetchall()
        known = {(a := decode_authorization(bytes(r[0]))).key: a for r in rows}
        if self._in_tx:  # kept for the transaction, with what it records
            self._letters = known
        return known

    def record_letter(self, letter: PartyAuthorization, value: bytes, source: str) -> bool:
        """Record a letter (its signed bytes and where they were read) if it is a newer
        version than the one recorded: True if it is, and its effect is then due."""
        self._require_transaction("record_letter")
        known = self.letters()
        if known is None:
            raise RuntimeError("letters are not required by this store")
        held = known.get(letter.key)
        if held is not None and held.version >= letter.version:
            return False
        known[letter.key] = letter
        self._letter_rows.append(
            (letter.party, letter.letter_of_authorization, letter.version, letter.status,
             value, source)
        )  # fmt: skip
        return True

    def blocks_of_host(self, host_party: str, states: tuple[ItmoState, ...]) -> list[Article6Block]:
        """The host Party's blocks in these states, as this transaction sees them."""
        marks = ", ".join("?" * len(states))
        rows = self.db.execute(
            "SELECT registry_id, series, start_no, end_no FROM article6_blocks"
            f" WHERE host_party = ? AND state IN ({marks})",
            (host_party, *(s.value for s in states)),
        ).fetchall()
        ranges = [(str(r), str(s), int(a), int(b)) for r, s, a, b in rows]
        found: dict[tuple[str, str, int], Article6Block] = {}
        for wanted in ranges:
            for b in self.article6_blocks(*wanted):
                if b.auth.host_party == host_party and b.state in states:
                    found[b.registry_id, b.series, b.start] = b
        return [found[k] for k in sorted(found)]

    # -- applying an event -------------------------------------------------------------------
    def applied(self, registry_id: str, event_id: str) -> bool:
        """The tracking record: was this event applied already?"""
        return (registry_id, event_id) in self.applied_among([(registry_id, event_id)])

    def applied_among(self, events: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """The (registry, event id) pairs among ``events`` that have a tracking record:
        a batch asks once, not once per event."""
        unique = dict.fromkeys(events)
        found = self._applied_now.intersection(unique)
        asked = [e for e in unique if e not in found]
        for chunk in chunks(asked, ("", "")):
            wanted = values_list(len(chunk), "TEXT", "TEXT")
            rows = self.db.execute(
                f"WITH asked (registry_id, event_id) AS (VALUES {wanted})"
                " SELECT a.registry_id, a.event_id FROM asked w JOIN applied_events a"
                " ON a.registry_id = w.registry_id AND a.event_id = w.event_id",
                [v for pair in chunk for v in pair],
            ).fetchall()
            found.update((str(r), str(e)) for r, e in rows)
        return found

    def apply(
        self, registry_id: str, event_id: str, source: str, effect: Effect
    ) -> list[ItmoAction]:
        """Apply an event's effect to the transaction's copy of the units and queue its
        tracking record; everything is written at commit, in bulk. Return this Party's
        actions."""
        self._require_transaction("apply")
        mine = self._apply_effect(registry_id, effect)
        self._applied_rows.append((registry_id, event_id, len(mine), source, time.time()))
        self._applied_now.add((registry_id, event_id))
        return mine

    def apply_effect(self, effect: Effect) -> list[ItmoAction]:
        """Apply an effect no event caused (a host Party's letter, whose recorded version
        is its tracking record); return this Party's actions."""
        self._require_transaction("apply_effect")
        return self._apply_effect("", effect)

    def _apply_effect(self, registry_id: str, effect: Effect) -> list[ItmoAction]:
        self._blocks.apply(effect.remove, effect.add)
        if effect.issuance is not None:
            self._issued.apply((), (effect.issuance,))
        for account, party in effect.accounts.items():
            self._parties[registry_id, account] = self._parties_set[registry_id, account] = party
        mine = [a for a in effect.actions if a.party == self.party]
        self._action_rows += [tuple(a.row().values()) for a in mine]
        return mine

    # -- reading the Party's ITMO ledger -----------------------------------------------------
    def actions(
        self,
        *,
        action_type: str | None = None,
        since: str | None = None,
        until: str | None = None,
        year: int | None = None,
    ) -> list[ItmoAction]:
        """The Party's actions in the order they happened."""
        clauses, params = ["party = ?"], [self.party]
        for column, op, value in (
            ("action_type", "=", action_type),
            ("occurred_at", ">=", since if year is None else f"{year:04d}-01-01"),
            ("occurred_at", "<", until if year is None else f"{year + 1:04d}-01-01"),
        ):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        rows = self.db.execute(
            f"SELECT {ACTION_COLUMNS} FROM itmo_actions WHERE {' AND '.join(clauses)}"
            f" ORDER BY {ACTION_ORDER}",
            params,
        ).fetchall()
        return [_action(r) for r in rows]

    def history(self, itmo_id: ItmoId) -> list[ItmoAction]:
        """Every action of the Party on the block holding this ITMO, in order."""
        rows = self.db.execute(
            f"SELECT {ACTION_COLUMNS} FROM itmo_actions WHERE party = ?"
            " AND cooperative_approach = ? AND party_registry = ?"
            " AND first_transferring_party = ? AND vintage = ?"
            " AND serial_first <= ? AND serial_last >= ?"
            f" ORDER BY {ACTION_ORDER}",
            (
                self.party,
                itmo_id.cooperative_approach,
                itmo_id.party_registry,
                itmo_id.first_transferring_party,
                itmo_id.vintage,
                itmo_id.serial,
                itmo_id.serial,
            ),
        ).fetchall()
        return [_action(r) for r in rows]

    def _party_blocks(self, extra: str = "", params: Sequence[Any] = ()) -> list[Article6Block]:
        rows = self.db.execute(
            f"SELECT {BLOCK_COLUMNS} FROM article6_blocks"
            f" WHERE (host_party = ? OR holder_party = ?) {extra}"
            " ORDER BY registry_id, series, start_no",
            (self.party, self.party, *params),
        ).fetchall()
        return [_block(r) for r in rows]

    def itmos(self, query: Query) -> list[ItmoBlock]:
        """The Party's ITMO blocks — authorized by it or held under its jurisdiction —
        filtered and paged (keyset on the underlying units)."""
        clauses: list[str] = []
        params: list[Any] = []
        if query.state:
            clauses.append("state = ?")
            params.append(query.state)
        if query.vintage is not None:
            clauses.append("vintage = ?")
            params.append(query.vintage)
        if query.after:
            registry, series, start = _cursor(query.after)
            clauses.append(
                "(registry_id > ? OR (registry_id = ? AND (series > ? OR"
                " (series = ? AND start_no > ?))))"
            )
            params += [registry, registry, series, series, start]
        extra = "".join(f" AND {c}" for c in clauses)
        wanted = None
        if query.action_type or query.since or query.until:
            wanted = self.actions(
                action_type=query.action_type, since=query.since, until=query.until
            )
        out: list[ItmoBlock] = []
        for b in self._party_blocks(extra, params):
            auth = b.auth
            if query.cooperative_approach and auth.cooperative_approach != (
                query.cooperative_approach
            ):
                continue
            if wanted is not None and not any(
                a.registry_id == b.registry_id
                and a.series == b.series
                and a.unit_first <= b.end
                and a.unit_last >= b.start
                for a in wanted
            ):
                continue
            out.append(self._view(b))
            if len(out) >= query.limit:
                break
        return out

    def _view(self, b: Article6Block) -> ItmoBlock:
        auth = b.auth
        offset = self.numbering.offset(b.registry_id)
        registry = self.numbering.registry_of(auth.host_party)
        first = ItmoId(
            auth.cooperative_approach, registry, auth.host_party, b.start + offset, b.vintage
        )
        return ItmoBlock(
            first_id=str(first),
            last_id=str(first.with_serial(b.end + offset)),
            quantity=b.size,
            state=b.state.value,
            holder_party=b.holder_party,
            account=b.account,
            vintage=b.vintage,
            cooperative_approach=auth.cooperative_approach,
            authorization_id=auth.authorization_id,
            first_transferring_party=auth.host_party,
            registry_id=b.registry_id,
            series=b.series,
            unit_first=b.start,
            unit_last=b.end,
            project_id=b.project_id,
            cursor=json.dumps([b.registry_id, b.series, b.start]),
        )

    def holdings(self) -> list[ItmoBlock]:
        """ITMOs held under the Party's jurisdiction now (not used, cancelled, revoked)."""
        return [
            self._view(b)
            for b in self._party_blocks(
                " AND holder_party = ? AND state IN (?, ?)",
                (self.party, "AUTHORIZED", "FIRST_TRANSFERRED"),
            )
        ]

    def applied_times(self) -> dict[str, float]:
        """When each event was applied (Unix seconds), by event id: for latency figures."""
        rows = self.db.execute("SELECT event_id, applied_at FROM applied_events").fetchall()
        return {str(e): float(t) for e, t in rows}

    def counts(self) -> dict[str, int]:
        (applied,) = self.db.execute("SELECT count(*) FROM applied_events").fetchone()
        (actions,) = self.db.execute(
            "SELECT count(*) FROM itmo_actions WHERE party = ?", (self.party,)
        ).fetchone()
        return {"applied_events": int(applied), "actions": int(actions)}

    def records(self) -> list[tuple[Any, ...]]:
        """The Party's actions (by id), then its ITMO blocks: what the digest covers."""
        rows = self.db.execute(
            f"SELECT {ACTION_COLUMNS} FROM itmo_actions WHERE party = ? ORDER BY action_id",
            (self.party,),
        ).fetchall()
        return [tuple(r) for r in rows] + [_block_row(b) for b in self._party_blocks()]

    def digest(self) -> str:
        """SHA-256 over the Party's actions (by id) and its ITMO blocks (by units):
        equal ledgers, equal digests, whatever order the events were applied in."""
        h = hashlib.sha256()
        rows = self.db.execute(
            f"SELECT {ACTION_COLUMNS} FROM itmo_actions WHERE party = ? ORDER BY action_id",
            (self.party,),
        ).fetchall()
        for r in rows:
            h.update(json.dumps(list(r), separators=(",", ":")).encode() + b"\n")
        for b in self._party_blocks():
            h.update(json.dumps(_block_row(b), separators=(",", ":")).encode())
            h.update(b"\n")
        return h.hexdigest()


def _cursor(text: str) -> tuple[str, str, int]:
    try:
        registry, series, start = json.loads(text)
        return str(registry), str(series), int(start)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a paging cursor: {text!r}") from exc


def open_national_store(url: str, party: str, numbering: Numbering | None = None) -> NationalStore:
    """``sqlite:///path/GHA.sqlite`` (or a bare path), or ``postgresql://…`` — one
    database (or PostgreSQL schema) per Party."""
    return NationalStore(
        open_database(url, "national", MIGRATIONS), party, numbering or Numbering()
    )
