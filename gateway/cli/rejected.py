"""``crg rejected``: inspect rejected events and send them through the gateway again."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from aiokafka import AIOKafkaProducer

from gateway.assembly import open_gateway_ledger, open_international
from gateway.cli.errors import CommandError
from gateway.cli.text import shown
from gateway.config import Settings
from gateway.contract.codec import default_codec
from gateway.contract.errors import ContractError
from gateway.contract.models import RegistryEvent
from gateway.contract.time import utc_now
from gateway.service.ledger.store import LedgerStore, RejectedRecord
from gateway.streaming.topics import Topics


def register(sub: Any) -> None:
    rejected = sub.add_parser("rejected", help="rejected events").add_subparsers(
        dest="rejected_command", required=True, metavar="ACTION"
    )
    for name, help_text in (
        ("list", "list rejected events"),
        ("reprocess", "send rejected events through the gateway again"),
    ):
        p = rejected.add_parser(name, help=help_text)
        p.add_argument("ids", nargs="*", type=int, help="rejected event ids (default: filter)")
        p.add_argument("--registry")
        p.add_argument("--reason")
        p.add_argument("--since", help="ISO time, UTC")
        p.add_argument("--until", help="ISO time, UTC")
        p.add_argument("--all", action="store_true", help="include already reprocessed ones")
        p.add_argument("--limit", type=int, default=100)
        if name == "list":
            p.add_argument("--json", action="store_true")
        p.set_defaults(handler=cmd_list if name == "list" else cmd_reprocess)
    p = rejected.add_parser("show", help="one rejected event, decoded where possible")
    p.add_argument("id", type=int)
    p.set_defaults(handler=cmd_show)
    p = rejected.add_parser("actions", help="ITMO actions the international registry refused")
    p.add_argument("--party")
    p.add_argument("--store", help="default: $CRG_INTERNATIONAL_STORE_URL or SQLite")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_actions)


def cmd_actions(args: argparse.Namespace, settings: Settings) -> int:

    store = open_international(settings, args.store)
    try:
        refused = store.submitted(outcome="rejected", party=args.party, limit=args.limit)
    finally:
        store.close()
    for s in refused:
        if args.json:
            print(json.dumps(s.__dict__, sort_keys=True))
        else:
            print(
                shown(
                    f"{s.recorded_at}  {s.party}  {s.action_type:<22} {s.action_id}  "
                    f"HTTP {s.status} {s.answer.get('error', '')}: {s.answer.get('message', '')}"
                )
            )
    if not args.json:
        print(f"{len(refused)} refused action(s)")
    return 0


def _select(ledger: LedgerStore, args: argparse.Namespace) -> list[RejectedRecord]:
    if args.ids:
        found = [ledger.rejected_by_id(i) for i in args.ids]
        missing = [i for i, r in zip(args.ids, found, strict=True) if r is None]
        if missing:
            raise CommandError(f"no rejected event with id {', '.join(map(str, missing))}")
        return [r for r in found if r is not None]
    return ledger.rejected(
        registry_id=args.registry,
        reason=args.reason,
        since=args.since,
        until=args.until,
        include_reprocessed=args.all,
        limit=args.limit,
    )


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    ledger = open_gateway_ledger(settings)
    try:
        records = _select(ledger, args)
    finally:
        ledger.close()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "registry_id": r.registry_id,
                        "event_id": r.event_id,
                        "reason": r.reason,
                        "message": r.message,
                        "source": r.source,
                        "received_at": r.received_at,
                        "reprocessed_at": r.reprocessed_at,
                        "bytes": len(r.value),
                    }
                    for r in records
                ],
                indent=2,
            )
        )
        return 0
    for r in records:
        done = f" (reprocessed {r.reprocessed_at})" if r.reprocessed_at else ""
        print(
            shown(
                f"{r.id:>6} {r.received_at} {r.reason:<28} {r.registry_id or '-':<14} "
                f"{r.event_id or '-'}: {r.message}{done}"
            )
        )
    if not records:
        print("no rejected events match")
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    ledger = open_gateway_ledger(settings)
    try:
        record = ledger.rejected_by_id(args.id)
    finally:
        ledger.close()
    if record is None:
        raise CommandError(f"no rejected event with id {args.id}")
    print(f"id:          {record.id}\nreason:      {record.reason}")
    print(f"message:     {shown(record.message)}")
    print(f"registry:    {shown(record.registry_id)}\nevent id:    {shown(record.event_id)}")
    print(f"source:      {shown(record.source)}\nreceived at: {record.received_at}")
    print(f"bytes:       {len(record.value)}")
    for key, value in record.headers:
        print(f"header {shown(key)}: {shown(value.decode('utf-8', errors='replace'))}")
    try:
        event = RegistryEvent.from_avro(default_codec().decode(record.value))
        print("event:\n" + shown(event.model_dump_json(indent=2)))
    except (ContractError, ValueError) as exc:
        print(f"value does not decode: {shown(exc)}\nfirst bytes: {record.value[:64].hex()}")
    return 0


async def _resend(settings: Settings, records: list[RejectedRecord]) -> None:
    producer = AIOKafkaProducer(
        **settings.kafka.options(),
        acks="all",
        enable_idempotence=settings.kafka_idempotence,
    )
    await producer.start()
    try:
        topic = Topics(settings.topic_prefix).raw
        for r in records:
            key = f"{r.registry_id}/".encode() if r.registry_id else None
            await producer.send_and_wait(
                topic,
                r.value,
                key=_key(r) or key,
                headers=[*r.headers, ("crg_reprocess_of", str(r.id).encode())],
            )
    finally:
        await producer.stop()


def _key(record: RejectedRecord) -> bytes | None:
    """Same partition as the original: the key is rebuilt from the event when it decodes."""
    try:
        event = RegistryEvent.from_avro(default_codec().decode(record.value))
    except (ContractError, ValueError):
        return None
    return f"{event.registry_id}/{event.project_id}".encode()


def cmd_reprocess(args: argparse.Namespace, settings: Settings) -> int:
    ledger = open_gateway_ledger(settings)
    try:
        records = _select(ledger, args)
        if not records:
            print("no rejected events match")
            return 0
        asyncio.run(_resend(settings, records))
        now = utc_now()
        with ledger.transaction():
            for r in records:
                ledger.mark_reprocessed(r.id, now)
    finally:
        ledger.close()
    print(f"sent {len(records)} event(s) to the raw topic again; the gateway judges them anew")
    return 0
