"""From one verified registry event to the ITMO actions it causes and the change to the
Article 6 blocks. Pure: no I/O; every rule is tested without a database or a broker.

The rules produce the actions of *every* Party concerned; each Party's adapter keeps its
own (``ItmoAction.party``). Decisions where the Article 6 texts leave room, each
documented in ``docs/national-registry.md``:

- first transfer happens where the host Party's first-transfer definition says
  (authorization or issuance: at once; use or cancellation: then), otherwise at the
  first transfer to an account under another Party's jurisdiction, or at use towards
  another Party's NDC (2/CMA.3 annex para 2(b); ``article6-formats.md`` §1.4);
- a transfer between accounts of the same Party (or of unknown jurisdiction) is not an
  ITMO action;
- an authorization revoked before first transfer ends the units' ITMO life; after first
  transfer it is recorded, and the ITMOs and the adjustment stand;
- a registry's Article 6 label makes ITMOs only when a letter of the host Party confirms
  it (:func:`gateway.contract.authorization.confirmation`); until then the units are a
  *claim* (no action; ``Effect.claims`` says why), which a letter arriving later
  confirms (:func:`letter_effect`), and which lapses if the units are used, cancelled or
  their label revoked first. The letter's terms (approach, uses, first-transfer
  definition) are the ones the actions carry.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from adapters.national.units import Article6Block, Issuance, ItmoState, letter_terms
from gateway.contract.authorization import (
    Authorizations,
    PartyAuthorization,
    Unconfirmed,
    confirmation,
)
from gateway.contract.itmo import (
    ActionType,
    AdjustmentSign,
    ItmoAction,
    Subtype,
    action_id,
)
from gateway.contract.itmo_identifier import party_registry_id
from gateway.contract.labels import label_identity, label_json
from gateway.contract.models import (
    AuthorizationLabelApplied,
    AuthorizationLabelRevoked,
    Label,
    LabelKind,
    RegistryEvent,
    UnitsCancelled,
    UnitsIssued,
    UnitsRetired,
    UnitsTransferred,
    UsePurpose,
)
from gateway.contract.time import utc_text
from gateway.ranges import Range, split


class UnitsView(Protocol):
    def article6_blocks(
        self, registry_id: str, series: str, start: int, end: int
    ) -> list[Article6Block]:
        """Article 6 blocks sharing a unit with the range, ordered by start."""
        ...

    def issuances(self, registry_id: str, series: str, start: int, end: int) -> list[Issuance]:
        """Issuances sharing a unit with the range, ordered by start."""
        ...

    def account_party(self, registry_id: str, account: str) -> str | None: ...

    def letters(self) -> Authorizations | None:
        """The host Parties' letters in force, by (Party, letter); None: letters are not
        required (a registry's label suffices, ``CRG_NATIONAL_LETTERS=off``)."""
        ...


class LettersView(UnitsView, Protocol):
    def blocks_of_host(self, host_party: str, states: tuple[ItmoState, ...]) -> list[Article6Block]:
        """The host Party's Article 6 blocks in these states, ordered by units."""
        ...


@dataclass(frozen=True)
class Numbering:
    """How ITMO identifiers are numbered: each Party's registry id, and a serial offset
    per crediting-program registry (see :mod:`.identifier`)."""

    party_registries: Mapping[str, str] = field(default_factory=dict)
    serial_offsets: Mapping[str, int] = field(default_factory=dict)

    def registry_of(self, party: str) -> str:
        return self.party_registries.get(party) or party_registry_id(party)

    def offset(self, registry_id: str) -> int:
        return self.serial_offsets.get(registry_id, 0)


@dataclass
class Effect:
    """What one event changes: replace ``remove`` by ``add`` among the Article 6 blocks,
    remember an issuance and account jurisdictions, record actions."""

    remove: list[Article6Block] = field(default_factory=list)
    add: list[Article6Block] = field(default_factory=list)
    issuance: Issuance | None = None
    accounts: dict[str, str] = field(default_factory=dict)  # account → Party
    actions: list[ItmoAction] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what could not be recorded, and why
    #: labels no letter of the host Party confirms: the claimed units, why, in words
    claims: list[tuple[Article6Block, Unconfirmed, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Cause:
    """What the actions of an effect are told to come from: a registry event, or a host
    Party's letter (event id ``letter:GHA/<letter>/v<version>``)."""

    registry_id: str
    event_id: str
    occurred_at: dt.datetime

    @staticmethod
    def of(event: RegistryEvent) -> Cause:
        return Cause(event.registry_id, event.event_id, event.occurred_at)


def _article6_label(labels: tuple[Label, ...] | list[Label]) -> Label | None:
    found = sorted(
        (lb for lb in labels if lb.kind == LabelKind.ARTICLE6_AUTHORIZATION), key=label_json
    )
    return found[0] if found else None


def _iso(moment: dt.datetime) -> str:
    return utc_text(moment)


class _Recorder:
    """Builds the actions of one event over the pieces of its blocks."""

    def __init__(self, event: Cause, numbering: Numbering, effect: Effect) -> None:
        self.event = event
        self.numbering = numbering
        self.effect = effect

    def record(
        self,
        piece: Article6Block,
        action_type: ActionType,
        party: str,
        subtype: Subtype | None = None,
        **extra: Any,
    ) -> None:
        auth = piece.auth
        offset = self.numbering.offset(piece.registry_id)
        self.effect.actions.append(
            ItmoAction(
                action_id=action_id(
                    self.event.registry_id,
                    self.event.event_id,
                    action_type,
                    party,
                    piece.series,
                    piece.start,
                ),
                party=party,
                action_type=action_type,
                subtype=subtype.value if subtype else None,
                occurred_at=_iso(self.event.occurred_at),
                event_id=self.event.event_id,
                registry_id=piece.registry_id,
                project_id=piece.project_id,
                cooperative_approach=auth.cooperative_approach,
                authorization_id=auth.authorization_id,
                first_transferring_party=auth.host_party,
                party_registry=self.numbering.registry_of(auth.host_party),
                serial_first=piece.start + offset,
                serial_last=piece.end + offset,
                vintage=piece.vintage,
                series=piece.series,
                unit_first=piece.start,
                unit_last=piece.end,
                quantity=piece.size,
                purposes=auth.purposes_text,
                first_transfer_definition=auth.first_transfer_definition,
                **extra,
            )
        )

    def first_transfer(
        self, piece: Article6Block, subtype: Subtype, acquiring: str | None = None
    ) -> None:
        """The host Party's first transfer: it must add a corresponding adjustment for
        the year the outcomes occurred."""
        host = piece.auth.host_party
        self.record(
            piece,
            ActionType.FIRST_TRANSFER,
            host,
            subtype,
            acquiring_party=acquiring,
            ca_party=host,
            ca_year=piece.vintage,
            ca_sign=AdjustmentSign.ADD,
        )

    def between_parties(self, piece: Article6Block, source: str, target: str) -> None:
        """Units move from ``source``'s jurisdiction to ``target``'s."""
        if piece.state == ItmoState.AUTHORIZED:
            self.first_transfer(piece, Subtype.TO_ANOTHER_PARTY, acquiring=target)
        else:
            self.record(piece, ActionType.TRANSFER, source, acquiring_party=target)
        self.record(piece, ActionType.ACQUISITION, target, transferring_party=source)


def _authorize(
    rec: _Recorder, block: Article6Block, first_transfer_definition: str | None
) -> Article6Block:
    rec.record(block, ActionType.AUTHORIZATION, block.auth.host_party)
    at = {"AUTHORIZATION": Subtype.AT_AUTHORIZATION, "ISSUANCE": Subtype.AT_ISSUANCE}
    subtype = at.get(first_transfer_definition or "")
    if subtype is None:
        return block
    rec.first_transfer(block, subtype)
    return block.changed(state=ItmoState.FIRST_TRANSFERRED)


def _authorize_or_claim(
    rec: _Recorder, block: Article6Block, label: Label, letters: Authorizations | None
) -> Article6Block:
    """The units become ITMOs if a letter of the host Party confirms the label (or
    letters are not required); else they are claimed, and the claim is said."""
    if letters is None:
        return _authorize(rec, block, label.first_transfer_definition)
    day = rec.event.occurred_at.date()
    letter, why, words = confirmation(
        label, letters, registry_id=block.registry_id, project_id=block.project_id,
        vintage=block.vintage, series=block.series, start=block.start, end=block.end, on=day,
    )  # fmt: skip
    if letter is None:
        assert why is not None
        claimed = block.changed(state=ItmoState.CLAIMED, claimed_on=day.isoformat())
        rec.effect.claims.append((claimed, why, words))
        return claimed
    confirmed = block.changed(letter=letter_terms(letter), claimed_on=day.isoformat())
    return _authorize(rec, confirmed, letter.first_transfer_definition)


def _issued(event: RegistryEvent, p: UnitsIssued, rec: _Recorder, view: UnitsView) -> None:
    sb = p.serial_block
    host = p.project.host_party
    rec.effect.issuance = Issuance(
        event.registry_id,
        sb.series,
        sb.start,
        sb.end,
        p.project.project_id,
        host,
        p.vintage,
        p.unit_type,
    )
    if p.account_party:
        rec.effect.accounts[p.account] = p.account_party
    label = _article6_label(p.labels)
    if label is None:
        return
    block = Article6Block(
        event.registry_id,
        sb.series,
        sb.start,
        sb.end,
        p.project.project_id,
        p.vintage,
        p.unit_type,
        label_json(label),
        ItmoState.AUTHORIZED,
        host,
        p.account,
    )
    rec.effect.add.append(_authorize_or_claim(rec, block, label, view.letters()))


def _gaps(start: int, end: int, covered: list[Article6Block]) -> list[tuple[int, int]]:
    gaps, at = [], start
    for b in covered:
        if b.start > at:
            gaps.append((at, min(b.start - 1, end)))
        at = max(at, b.end + 1)
    if at <= end:
        gaps.append((at, end))
    return gaps


def _label_applied(
    event: RegistryEvent, p: AuthorizationLabelApplied, view: UnitsView, rec: _Recorder
) -> None:
    if p.label.kind != LabelKind.ARTICLE6_AUTHORIZATION:
        return  # CORSIA eligibility and other labels make no ITMO action
    sb = p.serial_block
    blocks = view.article6_blocks(event.registry_id, sb.series, sb.start, sb.end)
    ended = (ItmoState.REVOKED, ItmoState.LAPSED)
    revoked = [b for b in blocks if b.state in ended]
    authorized = [b for b in blocks if b.state not in ended]
    if authorized:
        rec.effect.notes.append(
            f"units {authorized[0].start}-{authorized[0].end} were already under an Article 6 "
            "authorization: a second authorization of the same units is not a new ITMO"
        )
    for b in revoked:  # re-authorized after a revocation: new ITMO life for the piece
        rec.effect.remove.append(b)
        for lo, hi in ((b.start, sb.start - 1), (sb.end + 1, b.end)):
            if lo <= hi:
                rec.effect.add.append(b.changed(start=lo, end=hi))
    text, letters = label_json(p.label), view.letters()
    gaps = _gaps(sb.start, sb.end, authorized)
    # asked once for the whole serial block (what the store reads ahead), not per gap
    issued = view.issuances(event.registry_id, sb.series, sb.start, sb.end) if gaps else []
    for lo, hi in gaps:
        at = lo
        for issuance in (i for i in issued if i.start <= hi and i.end >= lo):
            piece_lo, piece_hi = max(issuance.start, lo), min(issuance.end, hi)
            if piece_lo > at:
                rec.effect.notes.append(f"no issuance known for units {at}-{piece_lo - 1}")
            block = Article6Block(
                event.registry_id,
                sb.series,
                piece_lo,
                piece_hi,
                issuance.project_id,
                issuance.vintage,
                issuance.unit_type,
                text,
                ItmoState.AUTHORIZED,
                p.label.host_party or issuance.host_party,
                None,
            )
            rec.effect.add.append(_authorize_or_claim(rec, block, p.label, letters))
            at = piece_hi + 1
        if at <= hi:
            rec.effect.notes.append(f"no issuance known for units {at}-{hi}: not recorded")


def _split(
    blocks: list[Article6Block],
    start: int,
    end: int,
    update: Callable[[Article6Block], Article6Block | None],
    effect: Effect,
) -> None:
    """Replace each block by its pieces outside the range and the updated piece inside;
    ``update`` returning None or the piece unchanged leaves the block as it is."""

    def changed(piece: Article6Block) -> Article6Block | None:
        updated = update(piece)
        return None if updated == piece else updated

    removed, added = split(blocks, start, end, changed)
    effect.remove += removed
    effect.add += added


def _label_revoked(
    event: RegistryEvent, p: AuthorizationLabelRevoked, view: UnitsView, rec: _Recorder
) -> None:
    if p.label.kind != LabelKind.ARTICLE6_AUTHORIZATION:
        return
    identity = label_identity(p.label)
    sb = p.serial_block

    def revoke(piece: Article6Block) -> Article6Block | None:
        if label_identity(piece.label()) != identity:
            return None
        if piece.state == ItmoState.CLAIMED:  # withdrawn before any letter confirmed it
            return piece.changed(state=ItmoState.LAPSED)
        if not piece.state.live:
            return None
        host = piece.auth.host_party
        if piece.state == ItmoState.AUTHORIZED:
            rec.record(piece, ActionType.LABEL_REVOCATION, host, details=p.reason)
            return piece.changed(state=ItmoState.REVOKED)
        rec.record(
            piece,
            ActionType.LABEL_REVOCATION,
            host,
            details="revoked after first transfer: the ITMOs and the corresponding "
            "adjustment stand" + (f" ({p.reason})" if p.reason else ""),
        )
        return None

    _split(
        view.article6_blocks(event.registry_id, sb.series, sb.start, sb.end),
        sb.start,
        sb.end,
        revoke,
        rec.effect,
    )


def _party_of(view: UnitsView, registry_id: str, account: str, named: str | None) -> str | None:
    return named or view.account_party(registry_id, account)


def _transferred(
    event: RegistryEvent, p: UnitsTransferred, view: UnitsView, rec: _Recorder
) -> None:
    for account, party in ((p.from_account, p.from_party), (p.to_account, p.to_party)):
        if party:
            rec.effect.accounts[account] = party
    sb = p.serial_block
    named_from = _party_of(view, event.registry_id, p.from_account, p.from_party)
    named_to = _party_of(view, event.registry_id, p.to_account, p.to_party)

    def move(piece: Article6Block) -> Article6Block:
        if piece.state == ItmoState.CLAIMED:  # no ITMO yet: the holder is remembered
            return piece.changed(account=p.to_account, holder_party=named_to)
        if not piece.state.live:
            return piece.changed(account=p.to_account)
        source = named_from or piece.holder_party
        target = named_to or source
        if target == source:  # within one jurisdiction: not an ITMO action
            return piece.changed(account=p.to_account)
        rec.between_parties(piece, source, target)
        return piece.changed(
            state=ItmoState.FIRST_TRANSFERRED, holder_party=target, account=p.to_account
        )

    _split(
        view.article6_blocks(event.registry_id, sb.series, sb.start, sb.end),
        sb.start,
        sb.end,
        move,
        rec.effect,
    )


def _used(
    event: RegistryEvent, p: UnitsRetired | UnitsCancelled, view: UnitsView, rec: _Recorder
) -> None:
    sb = p.serial_block
    cancelled = isinstance(p, UnitsCancelled)
    day = p.cancelled_on if isinstance(p, UnitsCancelled) else p.retired_on

    def use(piece: Article6Block) -> Article6Block | None:
        if piece.state == ItmoState.CLAIMED:  # used before any letter confirmed it
            return piece.changed(state=ItmoState.LAPSED)
        if not piece.state.live:
            return None
        auth = piece.auth
        holder = piece.holder_party
        if not cancelled and p.purpose == UsePurpose.NDC_USE:
            user = p.using_party or holder
            if user != holder:
                rec.between_parties(piece, holder, user)
            elif piece.state == ItmoState.AUTHORIZED:  # the host uses its own outcomes
                rec.record(
                    piece,
                    ActionType.USE_NDC,
                    user,
                    using_party=user,
                    ndc_year=day.year,
                    details="used by the authorizing Party itself: no first transfer, "
                    "no corresponding adjustment",
                )
                return piece.changed(state=ItmoState.USED)
            rec.record(
                piece,
                ActionType.USE_NDC,
                user,
                using_party=user,
                ndc_year=day.year,
                ca_party=user,
                ca_year=day.year,
                ca_sign=AdjustmentSign.SUBTRACT,
            )
            return piece.changed(state=ItmoState.USED, holder_party=user)
        oimp = not cancelled and p.purpose == UsePurpose.OIMP
        if piece.state == ItmoState.AUTHORIZED and (
            oimp or auth.first_transfer_definition == "USE_OR_CANCELLATION"
        ):
            rec.first_transfer(piece, Subtype.AT_USE_OR_CANCELLATION)
        common: dict[str, Any] = {"using_party": p.using_party, "using_entity": p.beneficiary}
        if oimp:
            rec.record(
                piece, ActionType.USE_OIMP, holder, oimp_purpose=p.oimp_scheme or "OIMP", **common
            )
            return piece.changed(state=ItmoState.USED)
        rec.record(
            piece,
            ActionType.CANCELLATION if cancelled else ActionType.VOLUNTARY_CANCELLATION,
            holder,
            Subtype.OMGE if p.purpose == UsePurpose.OMGE else Subtype.OTHER_CANCELLATION,
            **common,
        )
        return piece.changed(state=ItmoState.CANCELLED)

    _split(
        view.article6_blocks(event.registry_id, sb.series, sb.start, sb.end),
        sb.start,
        sb.end,
        use,
        rec.effect,
    )


def itmo_effect(event: RegistryEvent, view: UnitsView, numbering: Numbering) -> Effect:
    """The ITMO consequences of one event the gateway accepted."""
    effect = Effect()
    rec = _Recorder(Cause.of(event), numbering, effect)
    p = event.payload
    if isinstance(p, UnitsIssued):
        _issued(event, p, rec, view)
    elif isinstance(p, AuthorizationLabelApplied):
        _label_applied(event, p, view, rec)
    elif isinstance(p, AuthorizationLabelRevoked):
        _label_revoked(event, p, view, rec)
    elif isinstance(p, UnitsTransferred):
        _transferred(event, p, view, rec)
    else:
        _used(event, p, view, rec)
    return effect


def units_asked(event: RegistryEvent) -> tuple[Range | None, Range | None]:
    """The units whose Article 6 blocks, and the units whose issuances, :func:`itmo_effect`
    may ask the view about for ``event`` (None: none): what the store reads ahead for a
    batch, one query each. Only an Article 6 label looks up issuances (for the vintage
    and host Party of units labelled after their issuance); an issuance looks up
    nothing."""
    p = event.payload
    if isinstance(p, UnitsIssued):
        return None, None
    sb = p.serial_block
    units = (event.registry_id, sb.series, sb.start, sb.end)
    if isinstance(p, AuthorizationLabelApplied | AuthorizationLabelRevoked):
        if p.label.kind != LabelKind.ARTICLE6_AUTHORIZATION:
            return None, None
        return units, units if isinstance(p, AuthorizationLabelApplied) else None
    return units, None


def letter_effect(letter: PartyAuthorization, view: LettersView, numbering: Numbering) -> Effect:
    """What a host Party's letter (a new version of it) changes, once it is in force:

    - AUTHORIZED: each claim of the Party whose label it now confirms (on the day the
      units were labelled) becomes ITMOs, in the order of the units: the AUTHORIZATION,
      the first transfer where the letter's definition puts it (authorization or
      issuance), and — for claimed units that moved to another Party's jurisdiction
      meanwhile — the first transfer to that Party and its acquisition;
    - REVOKED: the blocks it confirmed lose their ITMO life before first transfer; after
      it the revocation is recorded and the ITMOs and the adjustment stand.

    The actions are told to come from the letter (event id ``letter:GHA/<ref>/v<n>``, at
    the time the Party signed it)."""
    effect = Effect()
    cause = Cause(
        "",
        f"letter:{letter.party}/{letter.letter_of_authorization}/v{letter.version}",
        letter.issued_at,
    )
    in_force = {letter.key: letter}
    if letter.status == "REVOKED":
        _letter_revoked(letter, view, numbering, cause, effect)
        return effect
    for block in view.blocks_of_host(letter.party, (ItmoState.CLAIMED,)):
        label = Label.model_validate(block.label())
        day = dt.date.fromisoformat(block.claimed_on) if block.claimed_on else letter.valid_from
        found, _, _ = confirmation(
            label, in_force, registry_id=block.registry_id, project_id=block.project_id,
            vintage=block.vintage, series=block.series, start=block.start, end=block.end,
            on=day,
        )  # fmt: skip
        if found is None:
            continue
        rec = _Recorder(dataclasses.replace(cause, registry_id=block.registry_id), numbering,
                        effect)  # fmt: skip
        host = letter.party
        confirmed = block.changed(state=ItmoState.AUTHORIZED, letter=letter_terms(letter))
        confirmed = _authorize(rec, confirmed, letter.first_transfer_definition)
        if confirmed.holder_party != host:  # moved while claimed: the transfer happens now
            rec.between_parties(confirmed, host, confirmed.holder_party)
            confirmed = confirmed.changed(state=ItmoState.FIRST_TRANSFERRED)
        effect.remove.append(block)
        effect.add.append(confirmed)
    return effect


def _letter_revoked(
    letter: PartyAuthorization,
    view: LettersView,
    numbering: Numbering,
    cause: Cause,
    effect: Effect,
) -> None:
    live = (ItmoState.AUTHORIZED, ItmoState.FIRST_TRANSFERRED)
    for block in view.blocks_of_host(letter.party, live):
        if block.auth.authorization_id != letter.letter_of_authorization or block.letter is None:
            continue
        rec = _Recorder(dataclasses.replace(cause, registry_id=block.registry_id), numbering,
                        effect)  # fmt: skip
        reason = letter.reason or "the host Party revoked its letter of authorization"
        if block.state == ItmoState.AUTHORIZED:
            rec.record(block, ActionType.LABEL_REVOCATION, letter.party, details=reason)
            effect.remove.append(block)
            effect.add.append(block.changed(state=ItmoState.REVOKED))
        else:
            rec.record(
                block,
                ActionType.LABEL_REVOCATION,
                letter.party,
                details="revoked after first transfer: the ITMOs and the corresponding "
                f"adjustment stand ({reason})",
            )
