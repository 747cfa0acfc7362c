"""``crg broker`` (run the embedded broker) and ``crg topics`` (create, list)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import threading
from typing import Any

from gateway.cli.errors import CommandError
from gateway.cli.national import party_code
from gateway.config import Settings
from gateway.streaming.acls import ROLES, grants
from gateway.streaming.local_broker import LocalBroker
from gateway.streaming.topics import Topics, ensure_topics, list_topics


def register(sub: Any) -> None:
    p = sub.add_parser("broker", help="run the embedded Kafka-protocol broker (tansu) on loopback")
    p.add_argument("--port", type=int, default=9092)
    p.set_defaults(handler=cmd_broker)

    topics = sub.add_parser("topics", help="the gateway's topics").add_subparsers(
        dest="topics_command", required=True, metavar="ACTION"
    )
    p = topics.add_parser("create", help="create the gateway's topics where missing")
    p.set_defaults(handler=cmd_topics_create)
    p = topics.add_parser("list", help="list topics on the broker")
    p.set_defaults(handler=cmd_topics_list)
    p = topics.add_parser(
        "acls",
        help="the ACLs one principal needs on a secured Kafka, as kafka-acls.sh commands",
        description="Print the kafka-acls.sh commands that grant USER what ROLE needs on "
        "the gateway's topics and nothing more (gateway/streaming/acls.py). An operator "
        "(a super user) runs them once per principal.",
    )
    p.add_argument("--role", choices=ROLES, required=True)
    p.add_argument("--user", required=True, help="the principal's SASL user name")
    p.add_argument("--party", type=party_code, help="the Party of a national adapter")
    p.add_argument(
        "--command-config", default="admin.properties", help="the operator's client settings"
    )
    p.set_defaults(handler=cmd_topics_acls)


def wait_for_stop() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def cmd_broker(args: argparse.Namespace, settings: Settings) -> int:
    with LocalBroker(port=args.port) as broker:
        topics = Topics(settings.topic_prefix)
        asyncio.run(ensure_topics(broker.bootstrap_servers, topics.all(), settings.partitions))
        print(f"broker on {broker.bootstrap_servers} (memory storage); Ctrl-C stops it")
        wait_for_stop()
    return 0


def cmd_topics_create(args: argparse.Namespace, settings: Settings) -> int:
    topics = Topics(settings.topic_prefix)
    created = asyncio.run(
        ensure_topics(settings.kafka, topics.all(), settings.partitions, settings.replication)
    )
    print("created: " + (", ".join(created) if created else "none (all exist)"))
    return 0


def cmd_topics_acls(args: argparse.Namespace, settings: Settings) -> int:
    if (args.role == "national") != bool(args.party):
        raise CommandError("--party is for --role national, and it needs one")
    for grant in grants(Topics(settings.topic_prefix), args.role, args.user, args.party):
        print(grant.command(settings.bootstrap_servers, args.command_config))
    return 0


def cmd_topics_list(args: argparse.Namespace, settings: Settings) -> int:
    for name in asyncio.run(list_topics(settings.kafka)):
        print(name)
    return 0
