"""``crg authorize``: a host Party publishes (or revokes) an authorization — its letter of
authorization's scope, uses, first-transfer definition and validity — signed with its
own key, on the authorizations topic; ``crg authorizations`` lists what is in force,
checking every message as any national adapter does.

Exit status of ``crg authorizations``: 0 every message holds; 1 some do not (listed).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from gateway.assembly import party_signer
from gateway.cli.errors import CommandError
from gateway.cli.national import party_code
from gateway.config import Settings
from gateway.contract.authorization import (
    PartyAuthorization,
    latest,
    verified_authorizations,
)
from gateway.contract.keys import KeyRing
from gateway.contract.message import Headers
from gateway.keystore import open_key_storage
from gateway.publishing.letters import publish_letters
from gateway.streaming.topics import Topics, ensure_topics, read_to_end

_SERIALS = re.compile(r"^(?:(?P<series>.*):)?(?P<start>[0-9]+)-(?P<end>[0-9]+)$")
_VINTAGES = re.compile(r"^(?P<first>[0-9]{4})?-(?P<last>[0-9]{4})?$|^(?P<one>[0-9]{4})$")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "authorize",
        help="publish a host Party's authorization (or its revocation), signed with its key",
    )
    p.add_argument("--party", required=True, type=party_code, help="the host Party, e.g. GHA")
    p.add_argument("--letter", required=True, help="the letter of authorization's reference")
    p.add_argument("--revoke", action="store_true", help="withdraw the letter in force")
    p.add_argument("--reason", help="why it is restated or revoked")
    p.add_argument("--version", type=int, help="default: one above the version in force")
    p.add_argument("--approach", help="cooperative approach, e.g. CA0001")
    p.add_argument(
        "--use",
        action="append",
        default=[],
        metavar="PURPOSE[:SCHEME]",
        help="an authorized use: NDC, OIMP:CORSIA, OTHER_PURPOSES (repeatable)",
    )
    p.add_argument(
        "--first-transfer",
        choices=("AUTHORIZATION", "ISSUANCE", "USE_OR_CANCELLATION"),
        help="the Party's first-transfer definition",
    )
    p.add_argument("--registry", help="the crediting-program registry, e.g. verra")
    p.add_argument("--project", action="append", default=[], help="a project id (repeatable)")
    p.add_argument("--vintages", help="e.g. 2021-2024, 2022, 2021- or -2024")
    p.add_argument(
        "--serials",
        action="append",
        default=[],
        metavar="[SERIES:]START-END",
        help="a block of unit numbers covered (repeatable)",
    )
    p.add_argument("--valid-from", help="first day labels can be confirmed (default today)")
    p.add_argument("--valid-until", help="last day labels can be confirmed (default open)")
    p.set_defaults(handler=cmd_authorize)

    q = sub.add_parser(
        "authorizations", help="list the host Parties' authorizations in force, verified"
    )
    q.add_argument("--party", type=party_code, help="only this Party's")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_authorizations)


@dataclass(frozen=True)
class _Read:
    in_force: dict[tuple[str, str], PartyAuthorization]
    refused: list[tuple[str, str, str]]
    messages: int


def _read(settings: Settings, keys: KeyRing) -> _Read:
    topic = Topics(settings.topic_prefix).authorizations
    records = asyncio.run(read_to_end(settings.kafka, topic))
    messages: list[tuple[str, bytes, Headers]] = [
        (f"{topic}/{r.partition}/{r.offset}", r.value or b"", list(r.headers)) for r in records
    ]
    held, refused = verified_authorizations(messages, keys)
    return _Read(latest(held), refused, len(records))


def _uses(texts: list[str]) -> list[dict[str, str | None]]:
    out = []
    for text in texts:
        purpose, _, scheme = text.partition(":")
        out.append({"purpose": purpose.upper(), "oimp_scheme": scheme or None})
    return out


def _vintages(text: str | None) -> tuple[int | None, int | None]:
    if not text:
        return None, None
    m = _VINTAGES.match(text)
    if m is None:
        raise CommandError(f"--vintages {text!r}: write 2021-2024, 2022, 2021- or -2024")
    if m["one"]:
        return int(m["one"]), int(m["one"])
    return (int(m["first"]) if m["first"] else None, int(m["last"]) if m["last"] else None)


def _serials(texts: list[str]) -> list[dict[str, Any]]:
    out = []
    for text in texts:
        m = _SERIALS.match(text)
        if m is None:
            raise CommandError(f"--serials {text!r}: write [SERIES:]START-END")
        out.append({"series": m["series"] or "", "start": int(m["start"]), "end": int(m["end"])})
    return out


def _statement(
    args: argparse.Namespace, known: PartyAuthorization | None, now: dt.datetime
) -> PartyAuthorization:
    version = args.version or (known.version + 1 if known else 1)
    if known is not None and version <= known.version:
        raise CommandError(f"version {version} is not above the version in force ({known.version})")
    if args.revoke:
        if known is None:
            raise CommandError(f"{args.party} has published no letter {args.letter!r} to revoke")
        return known.model_copy(
            update={"version": version, "status": "REVOKED", "issued_at": now,
                    "reason": args.reason}
        )  # fmt: skip
    missing = [
        flag
        for flag, value in (
            ("--approach", args.approach),
            ("--use", args.use),
            ("--first-transfer", args.first_transfer),
            ("--registry", args.registry),
        )
        if not value
    ]
    if missing:
        raise CommandError(f"an authorization needs {', '.join(missing)}")
    first, last = _vintages(args.vintages)
    data = {
        "party": args.party,
        "letter_of_authorization": args.letter,
        "version": version,
        "cooperative_approach": args.approach,
        "authorized_uses": _uses(args.use),
        "first_transfer_definition": args.first_transfer,
        "registry_id": args.registry,
        "project_ids": args.project,
        "vintage_first": first,
        "vintage_last": last,
        "serial_blocks": _serials(args.serials),
        "valid_from": args.valid_from or now.date().isoformat(),
        "valid_until": args.valid_until,
        "issued_at": now,
        "reason": args.reason,
    }
    try:
        return PartyAuthorization.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise CommandError(f"not a valid authorization: {problems}") from None


def cmd_authorize(args: argparse.Namespace, settings: Settings) -> int:
    signer = party_signer(settings, args.party)  # before any connection: no key, no call
    keys = open_key_storage(settings.resolved_keys_url).load()
    topics = Topics(settings.topic_prefix)
    asyncio.run(ensure_topics(settings.kafka, [topics.authorizations], 1, settings.replication))
    known = _read(settings, keys).in_force.get((args.party, args.letter))
    record = _statement(args, known, dt.datetime.now(dt.UTC).replace(microsecond=0))
    topic = topics.authorizations
    asyncio.run(publish_letters(settings.kafka, topic, [(record, signer)]))
    what = "revoked" if record.status == "REVOKED" else "published"
    print(
        f"{what} {record.party}'s letter {record.letter_of_authorization!r} version "
        f"{record.version} on {topics.authorizations} (key {signer.key_id})"
    )
    return 0


def _row(r: PartyAuthorization) -> dict[str, Any]:
    return r.model_dump(mode="json")


def cmd_authorizations(args: argparse.Namespace, settings: Settings) -> int:
    keys = open_key_storage(settings.resolved_keys_url).load()
    read = _read(settings, keys)
    shown = [r for k, r in sorted(read.in_force.items()) if not args.party or k[0] == args.party]
    if args.json:
        print(json.dumps({"authorizations": [_row(r) for r in shown],
                          "refused": [list(x) for x in read.refused]}, indent=2))  # fmt: skip
    else:
        for r in shown:
            scope = ", ".join(r.project_ids) or "any project"
            vintages = f"{r.vintage_first or ''}-{r.vintage_last or ''}"
            print(
                f"{r.party} {r.letter_of_authorization} v{r.version} {r.status} "
                f"{r.cooperative_approach} {r.registry_id} ({scope}; vintages {vintages}; "
                f"{len(r.serial_blocks) or 'all'} serial blocks) "
                f"from {r.valid_from} until {r.valid_until or 'open'}"
            )
        for source, reason, message in read.refused:
            print(f"refused {source}: {reason}: {message[:200]}")
        print(
            f"{read.messages} messages; {len(read.in_force)} letters; {len(read.refused)} refused"
        )
    return 1 if read.refused else 0
