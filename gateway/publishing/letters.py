"""Publishing a host Party's letters of authorization: each signed with a key of the
Party (:class:`~gateway.contract.itmo_message.PartySigner`) and produced on the
authorizations topic, keyed ``<party>/<letter>`` (``crg authorize``, ``crg up``)."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.contract.authorization import (
    PartyAuthorization,
    authorization_headers,
    encode_authorization,
)
from gateway.contract.itmo_message import PartySigner
from gateway.streaming.access import KafkaAccess
from gateway.streaming.produce import Produced, produce_all


def letter_message(record: PartyAuthorization, signer: PartySigner) -> Produced:
    """The message of one letter, signed by ``signer`` (a key of the letter's Party)."""
    if signer.party != record.party:
        raise ValueError(f"{record.party}'s letter cannot be signed with {signer.party}'s key")
    value = encode_authorization(record)
    return Produced(record.kafka_key, value, authorization_headers(signer, value))


async def publish_letters(
    kafka: KafkaAccess | str, topic: str, letters: Sequence[tuple[PartyAuthorization, PartySigner]]
) -> None:
    """Produce each letter, signed, and wait until the broker has them all."""
    await produce_all(kafka, topic, [letter_message(r, s) for r, s in letters])
