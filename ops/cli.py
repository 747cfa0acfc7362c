"""The tooling's commands, which ``crg`` offers when run from a checkout (``ops/`` is not
in the wheel): ``crg bench`` — throughput figures, always next to the bare stack in the
same run — and ``crg chaos`` — kill and pause components during a stream, then compare
every store with an undisturbed run's (:mod:`ops.chaos`)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import os
import platform
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastavro import schemaless_reader, schemaless_writer

from gateway.config import Settings
from gateway.contract.codec import default_codec
from gateway.contract.keys import KeyRecord, KeyRing, public_key_bytes
from gateway.contract.message import EventSigner, signature_headers, verify_and_decode
from gateway.contract.models import RegistryEvent
from ops import bench_e2e, bench_gateway, bench_international, bench_national, chaos


def register(sub: Any) -> None:
    register_bench(sub)
    register_chaos(sub)


def register_bench(sub: Any) -> None:
    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(
        dest="bench_command", required=True, metavar="WHAT"
    )
    p = bench.add_parser("contract", help="encode+sign and decode+verify vs bare fastavro/Ed25519")
    p.add_argument("-n", type=int, default=20_000, help="operations per measurement")
    p.add_argument("--repeat", type=int, default=3, help="best of N runs")
    p.set_defaults(handler=cmd_bench_contract)
    p = bench.add_parser("gateway", help="gateway events/s vs the bare loop on the same broker")
    p.add_argument("-n", type=int, default=20_000, help="events")
    p.add_argument("--store", help="ledger URL (default: SQLite in a temporary folder)")
    p.add_argument(
        "--processes", type=int, help="gateway and bare-loop processes (default: one per core)"
    )
    p.set_defaults(handler=cmd_bench_gateway)
    p = bench.add_parser("e2e", help="end to end: publish → ITMO ledger, latency, replay, RSS")
    p.add_argument("-n", type=int, default=200_000, help="events for the throughput run")
    p.add_argument(
        "--store",
        help="postgresql://…/db (fresh schemas are made in it); default SQLite files",
    )
    p.add_argument("--rate", type=float, default=1000.0, help="offered load for latency")
    p.add_argument("--latency-seconds", type=float, default=30.0)
    p.add_argument(
        "--broker",
        choices=("tansu", "kafka"),
        default="tansu",
        help="tansu, or one Apache Kafka node (ops/kafka/fetch)",
    )
    p.add_argument("--json", action="store_true", help="JSON instead of the table")
    p.add_argument(
        "--processes", type=int, help="gateway and bare-loop processes (default: one per core)"
    )
    p.set_defaults(handler=cmd_bench_e2e)
    p = bench.add_parser("national", help="ITMO ledger events/s vs the store's bare write rate")
    p.add_argument("-n", type=int, default=20_000, help="accepted events")
    p.add_argument("--store", help="postgresql://… (default: SQLite in a temporary folder)")
    p.set_defaults(handler=cmd_bench_national)
    p = bench.add_parser(
        "international", help="actions/s into the emulator, with and without faults"
    )
    p.add_argument("-n", type=int, default=5_000, help="actions")
    p.set_defaults(handler=cmd_bench_international)


def _rate(fn: Callable[[], object], n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def sample_event() -> Any:
    """A realistic event: an Article 6 authorized issuance as built from Verra's export."""

    return RegistryEvent.model_validate(
        {
            "event_id": "verra:issuance:19309:936487628-936494871",
            "registry_id": "verra",
            "project_id": "4150",
            "sequence": 42,
            "occurred_at": "2026-03-19T00:00:00Z",
            "payload": {
                "type": "UnitsIssued",
                "vintage_start": "2024-10-01",
                "vintage_end": "2024-12-31",
                "unit_type": "VCU",
                "project": {
                    "project_id": "4150",
                    "name": "DelAgua Clean Cooking Grouped Project in Rwanda",
                    "host_party": "RWA",
                    "methodology": "VMR0006; VM0050",
                    "sector": "Energy demand",
                },
                "labels": [
                    {
                        "kind": "ARTICLE6_AUTHORIZATION",
                        "text": "Article 6 Authorized – NDC Use",
                        "host_party": "RWA",
                        "authorized_uses": [{"purpose": "NDC"}],
                    }
                ],
                "serial_block": {
                    "serial": "19309-936487628-936494871-VCS-VCU-1491-VER-RW-3-4150-"
                    "01102024-31122024-1",
                    "start": 936487628,
                    "end": 936494871,
                },
                "quantity": 7244,
                "account": "verra/projects/4150/proponent",
            },
        }
    )


def contract_figures(n: int, repeat: int) -> list[tuple[str, float]]:

    codec = default_codec()
    event = sample_event()
    private = Ed25519PrivateKey.generate()
    public = private.public_key()

    ring = KeyRing(
        [
            KeyRecord(
                "verra", "k1", public_key_bytes(private), dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
            )
        ]
    )
    signer = EventSigner(codec, "k1", private)
    message = signer.sign_event(event)
    record = event.to_avro()
    schema = codec.current.parsed
    body = message.value[10:]
    signature = private.sign(message.value)
    raw_signature = signature_headers(message.headers)[1]

    def bare_encode() -> bytes:
        out = io.BytesIO()
        schemaless_writer(out, schema, record)
        return out.getvalue()

    return [
        ("bare fastavro encode", _rate(bare_encode, n, repeat)),
        ("bare Ed25519 sign", _rate(lambda: private.sign(message.value), n, repeat)),
        (
            "encode + sign (model → signed message)",
            _rate(lambda: signer.sign_event(event), n, repeat),
        ),
        (
            "bare fastavro decode",
            _rate(lambda: schemaless_reader(io.BytesIO(body), schema), n, repeat),
        ),
        ("bare Ed25519 verify", _rate(lambda: public.verify(signature, message.value), n, repeat)),
        (
            "decode + verify (bytes → checked model)",
            _rate(
                lambda: verify_and_decode(message.value, message.headers, ring, codec), n, repeat
            ),
        ),
        (
            "decode + verify, no model (bytes → dict)",
            _rate(
                lambda: (
                    ring.verify("k1", message.value, raw_signature),
                    codec.decode(message.value),
                ),
                n,
                repeat,
            ),
        ),
        (
            "decode + model, no signature",
            _rate(lambda: RegistryEvent.from_avro(codec.decode(message.value)), n, repeat),
        ),
    ]


def cmd_bench_contract(args: argparse.Namespace, settings: Settings) -> int:

    figures = contract_figures(args.n, args.repeat)
    print(
        f"contract benchmark: one core, best of {args.repeat} × {args.n} ops, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores on this machine"
    )
    for name, rate in figures:
        print(f"  {name:<44} {rate:>12,.0f} /s")
    rates = dict(figures)
    floor_out = 1 / (1 / rates["bare fastavro encode"] + 1 / rates["bare Ed25519 sign"])
    floor_in = 1 / (1 / rates["bare fastavro decode"] + 1 / rates["bare Ed25519 verify"])
    print(
        f"  encode+sign vs bare floor ({floor_out:,.0f}/s): "
        f"{rates['encode + sign (model → signed message)'] / floor_out:.0%}"
    )
    print(
        f"  decode+verify vs bare floor ({floor_in:,.0f}/s): "
        f"{rates['decode + verify (bytes → checked model)'] / floor_in:.0%}"
    )
    return 0


def cmd_bench_gateway(args: argparse.Namespace, settings: Settings) -> int:

    print(bench_gateway.report(asyncio.run(bench_gateway.run(args.n, args.store, args.processes))))
    return 0


def cmd_bench_national(args: argparse.Namespace, settings: Settings) -> int:

    print(bench_national.report(asyncio.run(bench_national.run(args.n, args.store))))
    return 0


def cmd_bench_international(args: argparse.Namespace, settings: Settings) -> int:

    print(bench_international.report(args.n, asyncio.run(bench_international.run(args.n))))
    return 0


def cmd_bench_e2e(args: argparse.Namespace, settings: Settings) -> int:

    figures = asyncio.run(
        bench_e2e.run(
            args.n, args.store, args.rate, args.latency_seconds, args.processes, args.broker
        )
    )
    print(bench_e2e.as_json(figures) if args.json else bench_e2e.report(figures))
    return 0


def register_chaos(sub: Any) -> None:
    p = sub.add_parser("chaos", help="SIGKILL/SIGSTOP components during a stream, compare stores")
    p.add_argument("--events", type=int, default=4000, help="events in the stream")
    p.add_argument("--rounds", type=int, default=20, help="disruptions (one per round)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--within", type=float, default=600, help="seconds each run may take")
    p.add_argument("--broker", choices=("tansu", "kafka"), default="tansu")
    p.set_defaults(handler=cmd_chaos)


def cmd_chaos(args: argparse.Namespace, settings: Settings) -> int:

    done = chaos.run(args.events, args.rounds, args.seed, args.within, args.broker)
    return 0 if asyncio.run(done) else 1
