"""``crg verify``: check the verified topic as any subscriber should, trusting nothing on
it — each message's registry signature and the gateway's attestation
(``gateway.contract.attestation.verify_verified``) against the trust store.

Exit status: 0 every message holds; 1 some do not (each listed with its reason).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
from typing import Any

from pydantic import ValidationError

from gateway.config import Settings
from gateway.contract.attestation import verify_verified
from gateway.contract.codec import default_codec
from gateway.contract.errors import ContractError
from gateway.keystore import open_key_storage
from gateway.streaming.topics import Topics, read_to_end


def register(sub: Any) -> None:
    p = sub.add_parser(
        "verify",
        help="check every message of the verified topic: registry signature and gateway "
        "attestation",
    )
    p.add_argument("--topic", help="default: the verified topic")
    p.add_argument("--show", type=int, default=20, help="list at most this many refused")
    p.set_defaults(handler=cmd_verify)


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    topic = args.topic or Topics(settings.topic_prefix).verified
    keys = open_key_storage(settings.resolved_keys_url).load()
    codec = default_codec()
    records = asyncio.run(read_to_end(settings.kafka, topic))
    held, refused = 0, collections.Counter[str]()
    listed = 0
    for r in records:
        try:
            verify_verified(r.value or b"", list(r.headers), topic, keys, codec)
            held += 1
        except (ContractError, ValidationError, ValueError) as exc:
            reason = exc.reason.value if isinstance(exc, ContractError) else "model_invalid"
            refused[reason] += 1
            if listed < args.show:
                listed += 1
                print(f"refused {topic}/{r.partition}/{r.offset}: {reason}: {str(exc)[:200]}")
    print(f"{topic}: {len(records)} messages; {held} hold (signed and attested)")
    for reason, n in sorted(refused.items()):
        print(f"  refused {n}: {reason}")
    return 1 if refused else 0
