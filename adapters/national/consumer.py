"""``crg adapter national --party GHA``: one Party's ITMO ledger kept from the verified
topic, each new action emitted on ``crg.article6.itmo-actions``.

A :class:`~gateway.streaming.process.ConsumerProcess`: preparing checks each verified
message as if anyone could have written the topic — the registry's signature and the
gateway's attestation (``verify_verified``) — and decodes it (while the batch before is
handled); a message that fails is refused: never applied, counted, logged and alerted on
the alerts topic with its reason; handling reads the batch's units ahead,
applies each event to the Party's store with its tracking record, in the batch's one
transaction, and queues the Party's new actions in the outbox. An event applied before
(a replay, or the gateway's identical repeat after a crash) changes nothing and emits
nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from pydantic import ValidationError

from adapters.national.rules import Numbering, itmo_effect
from adapters.national.store import NationalStore
from gateway.contract.attestation import verify_verified
from gateway.contract.codec import default_codec
from gateway.contract.errors import ContractError
from gateway.contract.itmo_message import PartySigner, action_headers, encode_action
from gateway.contract.keys import KeyRing
from gateway.contract.models import RegistryEvent
from gateway.streaming.access import KafkaAccess
from gateway.streaming.process import ConsumerProcess, Incoming
from gateway.streaming.topics import Topics

log = structlog.get_logger("crg.national")


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

    def keys(self) -> KeyRing:
        return self._keys() if callable(self._keys) else self._keys

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
        key = self.party.encode()
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
            for action in mine:
                value = encode_action(action)
                store.outbox_add(
                    msg.partition,
                    msg.offset,
                    self.topics.itmo_actions,
                    key,
                    value,
                    [*action_headers(action), *self.signer.headers(value)],
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

    def _alert(self, msg: Incoming, refused: Refused) -> None:
        """Say on the alerts topic that a message on the verified topic was refused."""
        alert = {
            "alert": "verified_message_refused",
            "party": self.party,
            "source": msg.source,
            "reason": refused.reason,
            "message": refused.message,
        }
        self.national.outbox_add(
            msg.partition,
            msg.offset,
            self.topics.alerts,
            self.party.encode(),
            json.dumps(alert, sort_keys=True).encode(),
            [("content-type", b"application/json"), ("crg_alert", alert["alert"].encode())],
        )
