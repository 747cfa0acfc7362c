"""``crg adapter national --party GHA``: one Party's ITMO ledger kept from the verified
topic, each new action emitted on ``crg.article6.itmo-actions``.

A :class:`~gateway.streaming.process.ConsumerProcess`: preparing checks each verified
message as if anyone could have written the topic — the registry's signature and the
gateway's attestation (``verify_verified``) — and decodes it (while the batch before is
handled); a message that fails is refused: never applied, counted, logged and alerted on
the alerts topic with its reason; handling first records the host Parties' letters that
arrived since the last batch (read by a :class:`~.letters.LetterFeed`, each version once:
the store's ``party_letters`` is its tracking record) with their effect — claims they
confirm, authorizations they revoke — then reads the batch's units ahead,
applies each event to the Party's store with its tracking record, in the batch's one
transaction, and queues the Party's new actions in the outbox. An event applied before
(a replay, or the gateway's identical repeat after a crash) changes nothing and emits
nothing. A label no letter confirms is a claim: no action, and an alert
(``authorization_unconfirmed``) to the host Party. Letters arriving while no verified
message comes are recorded at once, in a transaction of their own (:meth:`idle`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import ValidationError

from adapters.national.letters import LetterFeed
from adapters.national.rules import Effect, Numbering, itmo_effect, letter_effect
from adapters.national.store import NationalStore
from gateway.contract.attestation import verify_verified
from gateway.contract.codec import default_codec
from gateway.contract.errors import ContractError
from gateway.contract.itmo import ItmoAction
from gateway.contract.itmo_message import PartySigner, action_headers, encode_action
from gateway.contract.keys import KeyRing
from gateway.contract.models import RegistryEvent
from gateway.streaming.access import KafkaAccess
from gateway.streaming.process import ConsumerProcess, Incoming
from gateway.streaming.topics import Topics

log = structlog.get_logger("crg.national")

#: how long a starting adapter waits for the letters already published (seconds)
LETTERS_WAIT = 30.0


def letter_source(partition: int) -> int:
    """The outbox source partition of what a letter read from ``partition`` of the
    authorizations topic causes: negative, apart from the verified topic's."""
    return -1 - partition


@dataclass(frozen=True)
class Refused:
    """A verified-topic message this adapter will not apply, and why."""

    reason: str
    message: str


class NationalAdapter(ConsumerProcess[RegistryEvent | Refused]):
    """``keys``: the trust store (registry keys and the gateway's), or what returns it;
    ``signer``: the Party's key, which signs every action emitted."""

    name = "crg-national"

    def __init__(
        self,
        *,
        kafka: KafkaAccess | str,
        store: NationalStore,
        topics: Topics,
        keys: KeyRing | Callable[[], KeyRing],
        signer: PartySigner,
        numbering: Numbering | None = None,
        letters: bool = True,
        idempotence: bool = False,
        max_batch: int = 2000,
        group_id: str | None = None,
        outputs: Topics | None = None,
    ) -> None:
        super().__init__(
            kafka=kafka,
            store=store,
            topic=topics.verified,
            group_id=topics.group("national", store.party) if group_id is None else group_id,
            topics=topics,
            outputs=outputs,
            idempotence=idempotence,
            max_batch=max_batch,
        )
        self.national = store
        self.party = store.party
        self.numbering = numbering or store.numbering
        self._keys = keys
        if signer.party != store.party:
            raise ValueError(f"{store.party}'s actions cannot be signed with {signer.party}'s key")
        self.signer = signer
        self.refused = 0
        #: the host Parties' letters (None: a registry's label suffices, which only a
        #: deployment that chose ``CRG_NATIONAL_LETTERS=off`` does)
        self.feed = LetterFeed(kafka, topics.authorizations, self.keys) if letters else None
        store.letters_required = letters
        self._letters_taken = 0  # feed messages whose effect is committed
        self._letters_seen_in_batch = 0
        self._refusals_alerted = 0  # refused letters alerted in this run
        self._refusals_queued = 0
        self._feed_task: asyncio.Task[None] | None = None
        self._feed_stop = asyncio.Event()

    def keys(self) -> KeyRing:
        return self._keys() if callable(self._keys) else self._keys

    # -- the letters ----------------------------------------------------------------------
    async def start(self) -> None:
        await super().start()
        if self.feed is not None and self._feed_task is None:
            self._feed_stop.clear()
            self._feed_task = asyncio.create_task(self.feed.run(self._feed_stop))
            # labels read before the letters already published would only be claims for
            # a moment (a letter confirms them when it is taken), but a replay should
            # find the letters in place: wait a little for them
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(LETTERS_WAIT):
                    await self.feed.caught_up.wait()

    async def stop(self) -> None:
        try:
            await super().stop()
        finally:
            if self._feed_task is not None:
                self._feed_stop.set()
                with contextlib.suppress(Exception):
                    await self._feed_task
                self._feed_task = None

    def side_partitions(self) -> list[int]:
        if self.feed is None:
            return []
        return sorted(letter_source(p) for p in self.feed.partitions)

    async def idle(self) -> None:
        if self.feed is not None and self.feed.seen > self._letters_taken:
            seen = self.feed.seen
            await self.commit_aside(self._take_letters)
            self._letters_taken, self._refusals_alerted = seen, self._refusals_queued

    def batch_done(self, batch: Any, counts: dict[str, int]) -> None:
        super().batch_done(batch, counts)
        self._letters_taken = self._letters_seen_in_batch
        self._refusals_alerted = self._refusals_queued

    def _take_letters(self) -> int:
        """Inside a transaction: record each letter version the feed holds that is newer
        than the store's, with its effect, and alert each refused message once per run.
        Return how many took effect."""
        assert self.feed is not None
        store, took = self.national, 0
        for refused in self.feed.refused[self._refusals_alerted :]:
            self._alert_letter(refused.partition, refused.offset, refused.source,
                               refused.reason, refused.message)  # fmt: skip
        self._refusals_queued = len(self.feed.refused)
        for item in self.feed.held:
            if not store.record_letter(item.letter, item.value, item.source):
                continue
            effect = letter_effect(item.letter, store, self.numbering)
            mine = store.apply_effect(effect)
            self._emit(mine, letter_source(item.partition), item.offset)
            log.info(
                "national.letter", party=self.party, host=item.letter.party,
                letter=item.letter.letter_of_authorization, version=item.letter.version,
                status=item.letter.status, actions=len(mine),
            )  # fmt: skip
            took += 1
        return took

    def prepare(self, messages: list[Incoming]) -> list[RegistryEvent | Refused]:
        codec, keys = default_codec(), self.keys()
        out: list[RegistryEvent | Refused] = []
        for msg in messages:
            try:
                out.append(verify_verified(msg.value, msg.headers, self.topic, keys, codec).event)
            except ContractError as exc:
                out.append(self._refuse(msg, exc.reason.value, str(exc)))
            except (ValidationError, ValueError) as exc:
                out.append(self._refuse(msg, "model_invalid", str(exc)))
        return out

    def _refuse(self, msg: Incoming, reason: str, message: str) -> Refused:
        self.refused += 1
        log.error(
            "national.refused", party=self.party, source=msg.source, reason=reason,
            message=message[:300],
        )  # fmt: skip
        return Refused(reason, message[:1000])

    def handle(self, items: list[tuple[Incoming, RegistryEvent | Refused]]) -> dict[str, int]:
        store, counts = self.national, {"applied": 0, "repeat": 0, "refused": 0, "actions": 0}
        self._letters_seen_in_batch = self._letters_taken
        if self.feed is not None and self.feed.seen > self._letters_taken:
            self._letters_seen_in_batch = self.feed.seen
            counts["letters"] = self._take_letters()
        told = log.bind(party=self.party)  # bound once per batch, not once per action
        events = [e for _, e in items if isinstance(e, RegistryEvent)]
        seen = store.applied_among((e.registry_id, e.event_id) for e in events)
        store.read_ahead(e for e in events if (e.registry_id, e.event_id) not in seen)
        for msg, event in items:
            if isinstance(event, Refused):
                counts["refused"] += 1
                self._alert(msg, event)
                continue
            if (event.registry_id, event.event_id) in seen:  # applied before, or above
                counts["repeat"] += 1
                continue
            seen.add((event.registry_id, event.event_id))
            effect = itmo_effect(event, store, self.numbering)
            mine = store.apply(event.registry_id, event.event_id, msg.source, effect)
            self._emit(mine, msg.partition, msg.offset)
            for note in effect.notes:
                told.info("national.note", event_id=event.event_id, note=note)
            self._claimed(msg, event, effect)
            counts["applied"] += 1
            counts["actions"] += len(mine)
        return counts

    def _emit(self, mine: list[ItmoAction], partition: int, offset: int) -> None:
        """Queue this Party's new actions, signed, in the outbox."""
        key = self.party.encode()
        for action in mine:
            value = encode_action(action)
            self.national.outbox_add(
                partition,
                offset,
                self.topics.itmo_actions,
                key,
                value,
                [*action_headers(action), *self.signer.headers(value)],
            )
            log.info(
                "national.action",
                party=self.party,
                action=action.action_type.value,
                itmo_first=str(action.first_id),
                quantity=action.quantity,
                event_id=action.event_id,
                registry=action.registry_id,
            )

    def _claimed(self, msg: Incoming, event: RegistryEvent, effect: Effect) -> None:
        """Alert the host Party (this adapter's, once) to labels no letter confirms."""
        mine = [(b, why, words) for b, why, words in effect.claims
                if b.auth.host_party == self.party]  # fmt: skip
        if not mine:
            return
        alert = {
            "alert": "authorization_unconfirmed",
            "party": self.party,
            "registry": event.registry_id,
            "event_id": event.event_id,
            "source": msg.source,
            "claims": [
                {
                    "series": b.series,
                    "start": b.start,
                    "end": b.end,
                    "project_id": b.project_id,
                    "vintage": b.vintage,
                    "reason": why.value,
                    "message": words[:500],
                }
                for b, why, words in mine[:20]
            ],
            "units": sum(b.size for b, _, _ in mine),
        }
        self._put_alert(msg.partition, msg.offset, alert)
        log.warning("national.claimed", party=self.party, registry=event.registry_id,
                    event_id=event.event_id, units=alert["units"],
                    reason=mine[0][1].value)  # fmt: skip

    def _alert_letter(
        self, partition: int, offset: int, source: str, reason: str, message: str
    ) -> None:
        self._put_alert(
            letter_source(partition),
            offset,
            {"alert": "authorization_refused", "party": self.party, "source": source,
             "reason": reason, "message": message},
        )  # fmt: skip

    def _put_alert(self, partition: int, offset: int, alert: dict[str, Any]) -> None:
        self.national.outbox_add(
            partition,
            offset,
            self.topics.alerts,
            self.party.encode(),
            json.dumps(alert, sort_keys=True).encode(),
            [("content-type", b"application/json"), ("crg_alert", alert["alert"].encode())],
        )

    def _alert(self, msg: Incoming, refused: Refused) -> None:
        """Say on the alerts topic that a message on the verified topic was refused."""
        alert = {
            "alert": "verified_message_refused",
            "party": self.party,
            "source": msg.source,
            "reason": refused.reason,
            "message": refused.message,
        }
        self._put_alert(msg.partition, msg.offset, alert)
