"""``crg adapter national --party GHA``: one Party's ITMO ledger kept from the verified
topic, each new action emitted on ``crg.article6.itmo-actions``.

A :class:`~gateway.streaming.process.ConsumerProcess`: preparing decodes the verified
events (while the batch before is handled); handling reads the batch's units ahead,
applies each event to the Party's store with its tracking record, in the batch's one
transaction, and queues the Party's new actions in the outbox. An event applied before
(a replay, or the gateway's identical repeat after a crash) changes nothing and emits
nothing.
"""

from __future__ import annotations

import structlog

from adapters.national.rules import Numbering, itmo_effect
from adapters.national.store import NationalStore
from gateway.contract.codec import default_codec
from gateway.contract.errors import ContractError
from gateway.contract.itmo_message import action_headers, encode_action
from gateway.contract.models import RegistryEvent
from gateway.streaming.access import KafkaAccess
from gateway.streaming.process import ConsumerProcess, Incoming
from gateway.streaming.topics import Topics

log = structlog.get_logger("crg.national")


class NationalAdapter(ConsumerProcess[RegistryEvent | None]):
    name = "crg-national"

    def __init__(
        self,
        *,
        kafka: KafkaAccess | str,
        store: NationalStore,
        topics: Topics,
        numbering: Numbering | None = None,
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

    def prepare(self, messages: list[Incoming]) -> list[RegistryEvent | None]:
        codec = default_codec()
        out: list[RegistryEvent | None] = []
        for msg in messages:
            try:
                out.append(RegistryEvent.from_avro(codec.decode(msg.value)))
            except (ContractError, ValueError) as exc:
                # the gateway let it through: a schema this build does not know, or a
                # message written to the verified topic by something else
                log.error("national.undecodable", source=msg.source, error=str(exc)[:200])
                out.append(None)
        return out

    def handle(self, items: list[tuple[Incoming, RegistryEvent | None]]) -> dict[str, int]:
        store, counts = self.national, {"applied": 0, "repeat": 0, "undecodable": 0, "actions": 0}
        key = self.party.encode()
        told = log.bind(party=self.party)  # bound once per batch, not once per action
        seen = store.applied_among((e.registry_id, e.event_id) for _, e in items if e is not None)
        store.read_ahead(
            e for _, e in items if e is not None and (e.registry_id, e.event_id) not in seen
        )
        for msg, event in items:
            if event is None:
                counts["undecodable"] += 1
                continue
            if (event.registry_id, event.event_id) in seen:  # applied before, or above
                counts["repeat"] += 1
                continue
            seen.add((event.registry_id, event.event_id))
            effect = itmo_effect(event, store, self.numbering)
            mine = store.apply(event.registry_id, event.event_id, msg.source, effect)
            for action in mine:
                store.outbox_add(
                    msg.partition,
                    msg.offset,
                    self.topics.itmo_actions,
                    key,
                    encode_action(action),
                    action_headers(action),
                )
                told.info(
                    "national.action",
                    action=action.action_type.value,
                    itmo_first=str(action.first_id),
                    quantity=action.quantity,
                    event_id=event.event_id,
                    registry=event.registry_id,
                )
            for note in effect.notes:
                told.info("national.note", event_id=event.event_id, note=note)
            counts["applied"] += 1
            counts["actions"] += len(mine)
        return counts
