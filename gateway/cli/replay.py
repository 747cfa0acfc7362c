"""``crg replay``: run one consumer over part of its history again.

Rewind the gateway's or an adapter's position to an offset or a time (Kafka's
offsets-for-times) and run forward to where the topic ends now. Over the live store the
tracking records make it change nothing; ``--into DIR`` replays into a scratch store
instead and ends with a reconciliation: the live digest, the replayed digest, and the
first record that differs if they differ. Stop the live consumer first when replaying
over its store. Interrupt at any time: the store keeps its position, and running the
command again without ``--from-…`` resumes.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from tqdm import tqdm

from gateway.assembly import consumer_of, open_kind_store
from gateway.cli.errors import CommandError
from gateway.cli.running import run_until_signalled
from gateway.config import Settings
from gateway.streaming.access import KafkaAccess
from gateway.streaming.topics import Topics, topic_partitions

KINDS = ("gateway", "national", "international")


def register(sub: Any) -> None:
    p = sub.add_parser("replay", help="run a consumer over part of its history again")
    p.add_argument("consumer", choices=KINDS)
    p.add_argument("--party", help="for the national adapter: whose ledger")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--from-offset", type=int, help="rewind every partition to this offset")
    where.add_argument("--from-time", help="rewind to the first message at or after this time")
    p.add_argument("--into", type=Path, help="replay into a scratch store in this folder")
    p.set_defaults(handler=cmd_replay)


def scratch_url(kind: str, folder: Path) -> str:
    return f"sqlite://{(folder / f'{kind}.sqlite').resolve()}"


async def positions(
    kafka: KafkaAccess, topic: str, offset: int | None, moment: dt.datetime | None
) -> tuple[dict[int, int], dict[int, int]]:
    """Where to rewind each partition to, and where the topic ends now."""
    consumer = AIOKafkaConsumer(**kafka.options(), group_id=None)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in await topic_partitions(kafka, topic)]
        if not parts:
            raise CommandError(f"topic {topic} does not exist on {kafka.bootstrap_servers}")
        ends = {tp.partition: o for tp, o in (await consumer.end_offsets(parts)).items()}
        starts = {p: 0 for p in ends}
        if offset is not None:
            starts = {p: min(offset, end) for p, end in ends.items()}
        elif moment is not None:
            found = await consumer.offsets_for_times(
                {tp: int(moment.timestamp() * 1000) for tp in parts}
            )
            starts = {
                tp.partition: (ends[tp.partition] if hit is None else hit.offset)
                for tp, hit in found.items()
            }
        return starts, ends
    finally:
        await consumer.stop()


def first_difference(live: Sequence[Any], replayed: Sequence[Any]) -> str | None:
    for i, (a, b) in enumerate(zip(live, replayed, strict=False)):
        if a != b:
            return f"record {i}: live {a!r}\n          replayed {b!r}"
    if len(live) != len(replayed):
        return f"live has {len(live)} records, the replay {len(replayed)}"
    return None


async def replay(
    kind: str,
    settings: Settings,
    *,
    party: str | None,
    from_offset: int | None,
    from_time: str | None,
    into: Path | None,
    stop: asyncio.Event,
) -> int:
    url = scratch_url(f"{kind}-{party or ''}".rstrip("-"), into) if into else None
    if kind == "national" and not party:
        raise CommandError("replay national needs --party")
    store = open_kind_store(kind, settings, party, url)
    tag = uuid.uuid4().hex[:8]
    live = Topics(settings.topic_prefix).group(kind, party if kind == "national" else None)
    process, extra = consumer_of(
        kind,
        settings,
        store,
        group_id=f"{live}.replay-{tag}",  # not the live group
        # what a scratch replay produces must not reach live subscribers
        outputs=Topics(f"{settings.topic_prefix}.replay-{tag}") if into is not None else None,
    )
    topic = process.topic
    moment = None
    if from_time:
        try:
            moment = dt.datetime.fromisoformat(from_time.replace("Z", "+00:00"))
        except ValueError:
            raise CommandError(f"--from-time {from_time!r} is not an ISO 8601 time") from None
    rewind = (
        from_offset is not None
        or moment is not None
        or (into is not None and not store.offsets(topic))
    )
    if not rewind and not store.offsets(topic) and into is None:
        raise CommandError("say where to replay from: --from-offset 0, or --from-time T")
    starts, ends = await positions(settings.kafka, topic, from_offset, moment)
    if rewind:
        with store.transaction():
            store.set_offsets(topic, starts)
    begin = store.offsets(topic)
    todo = sum(max(ends[p] - begin.get(p, 0), 0) for p in ends)
    print(
        f"replaying {kind} over {topic}: {todo:,} messages "
        f"({'scratch store in ' + str(into) if into else 'the live store'})"
    )
    if extra is not None:
        await extra.__aenter__()
    await process.start()
    bar = tqdm(total=todo, unit="msg", file=sys.stderr, dynamic_ncols=True)
    handled = -1
    try:
        while not stop.is_set():
            done = store.offsets(topic)
            bar.n = sum(max(min(done.get(p, 0), ends[p]) - begin.get(p, 0), 0) for p in ends)
            bar.refresh()
            # past the ends the broker reported, and nothing more to fetch (tansu's end
            # offsets can lag behind batched writes)
            if handled == 0 and all(done.get(p, 0) >= end for p, end in ends.items()):
                break
            handled = await process.step(timeout_ms=300)
        await process.settle_acks()
    finally:
        bar.close()
        await process.stop()
        if extra is not None:
            await extra.__aexit__(None, None, None)
    finished = all(store.offsets(topic).get(p, 0) >= end for p, end in ends.items())
    print(
        f"{'done' if finished else 'interrupted (run again to resume)'}: "
        f"{process.processed:,} messages handled"
    )
    if into is None or not finished:
        store.close()
        return 0 if finished else 130
    live = open_kind_store(kind, settings, party, None)
    try:
        print(f"live digest     {live.digest()}")
        print(f"replayed digest {store.digest()}")
        if live.digest() == store.digest():
            print("reconciled: the replay rebuilt the live store exactly")
            return 0
        print("DIFFERENT — first difference:")
        print("  " + str(first_difference(live.records(), store.records())))
        return 1
    finally:
        live.close()
        store.close()


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    if args.consumer == "national" and not args.party:
        raise CommandError("replay national needs --party")
    result = 0

    async def main(stop: asyncio.Event) -> None:
        nonlocal result
        result = await replay(
            args.consumer,
            settings,
            party=args.party,
            from_offset=args.from_offset,
            from_time=args.from_time,
            into=args.into,
            stop=stop,
        )

    run_until_signalled(main)
    return result
