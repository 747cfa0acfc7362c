"""``crg keys``: generate, register, rotate, revoke and list signing keys: registries'
(their events) and the gateway's (its attestations)."""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from gateway.cli.errors import CommandError
from gateway.cli.national import party_code
from gateway.config import Settings
from gateway.contract.attestation import GATEWAY_OWNER
from gateway.contract.errors import KeyUnknown
from gateway.contract.itmo_message import party_owner
from gateway.contract.keys import REGISTRY_ID, KeyRecord, make_key_id
from gateway.keystore import open_key_storage
from gateway.keystore.private import generate, private_key_path, write_private_key


def _when(text: str | None) -> dt.datetime:
    if not text or text == "now":
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a time zone (e.g. Z)")
    return parsed.astimezone(dt.UTC)


def register(sub: Any) -> None:
    keys = sub.add_parser("keys", help="registry signing keys").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION"
    )
    p = keys.add_parser("generate", help="new key pair; private key written 0600, public printed")
    _owner(p)
    p.add_argument("--register", action="store_true", help="also register the public key")
    p.add_argument("--valid-from", default=None, help="ISO time (default now)")
    p.set_defaults(handler=cmd_generate)

    p = keys.add_parser("register", help="register a registry's public key")
    p.add_argument("--registry", required=True, type=registry_id)
    p.add_argument("--public-key", required=True, help="raw 32-byte key, base64")
    p.add_argument("--key-id", help="default: derived from registry, date and key")
    p.add_argument("--valid-from", default=None)
    p.add_argument("--valid-until", default=None)
    p.set_defaults(handler=cmd_register)

    p = keys.add_parser("rotate", help="new key for a registry; its open keys close after overlap")
    _owner(p)
    p.add_argument("--overlap-hours", type=float, default=1.0)
    p.set_defaults(handler=cmd_rotate)

    p = keys.add_parser("revoke", help="revoke a key from a moment on (events at/after it fail)")
    p.add_argument("--key-id", required=True)
    p.add_argument("--at", default=None, help="ISO time; after a compromise, its estimated time")
    p.add_argument("--reason", default=None)
    p.set_defaults(handler=cmd_revoke)

    p = keys.add_parser("list", help="registered public keys")
    p.add_argument("--registry", type=registry_id)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_list)


def registry_id(text: str) -> str:
    """An argument naming a registry: its id as events carry it."""
    if not REGISTRY_ID.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a registry id (lower-case letters, digits, '.', '_', '-')"
        )
    return text


def _owner(parser: argparse.ArgumentParser) -> None:
    """Whose key: a registry's (signs its events), the gateway's (attests verdicts) or a
    Party's (signs its ITMO actions)."""
    owner = parser.add_mutually_exclusive_group(required=True)
    owner.add_argument("--registry", type=registry_id, help="a registry id, e.g. verra")
    owner.add_argument(
        "--gateway",
        dest="registry",
        action="store_const",
        const=GATEWAY_OWNER,
        help=f"the gateway's attestation key (owner {GATEWAY_OWNER})",
    )
    owner.add_argument(
        "--party",
        dest="registry",
        type=lambda code: party_owner(party_code(code)),
        help="a Party's key, which signs its national adapter's ITMO actions (owner party:GHA)",
    )


def _new_key(settings: Settings, registry: str, valid_from: dt.datetime) -> KeyRecord:
    private, record = generate(registry, valid_from)
    path = private_key_path(settings.resolved_private_key_dir, record.key_id)
    write_private_key(path, private)
    print(f"private key: {path} (mode 0600; never share it)")
    return record


def _show(record: KeyRecord) -> None:
    print(f"key id:     {record.key_id}")
    print(f"registry:   {record.registry_id}")
    print(f"public key: {record.public_key_b64}")


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    record = _new_key(settings, args.registry, _when(args.valid_from))
    _show(record)
    if args.register:
        open_key_storage(settings.resolved_keys_url).save([record])
        print(f"registered in {settings.resolved_keys_url}")
    return 0


def cmd_register(args: argparse.Namespace, settings: Settings) -> int:
    try:
        public = base64.b64decode(args.public_key, validate=True)
    except ValueError:
        raise CommandError("--public-key is not base64") from None
    if len(public) != 32:
        raise CommandError("--public-key must be a 32-byte Ed25519 public key")
    valid_from = _when(args.valid_from)
    record = KeyRecord(
        registry_id=args.registry,
        key_id=args.key_id or make_key_id(args.registry, public, valid_from),
        public_key=public,
        valid_from=valid_from,
        valid_until=_when(args.valid_until) if args.valid_until else None,
    )
    try:
        open_key_storage(settings.resolved_keys_url).save([record])
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    _show(record)
    return 0


def cmd_rotate(args: argparse.Namespace, settings: Settings) -> int:
    storage = open_key_storage(settings.resolved_keys_url)
    ring = storage.load()
    record = _new_key(settings, args.registry, _when(None))
    changed = ring.rotated(record, overlap=dt.timedelta(hours=args.overlap_hours))
    storage.save(changed)
    _show(record)
    for old in changed[1:]:
        print(f"closed:     {old.key_id} valid until {old.valid_until:%Y-%m-%dT%H:%M:%SZ}")
    return 0


def cmd_revoke(args: argparse.Namespace, settings: Settings) -> int:

    storage = open_key_storage(settings.resolved_keys_url)
    try:
        record = storage.load().get(args.key_id)
    except KeyUnknown as exc:
        raise CommandError(str(exc)) from None
    revoked = replace(record, revoked_at=_when(args.at), revocation_reason=args.reason)
    storage.save([revoked])
    kept = storage.load().get(record.key_id)
    assert kept.revoked_at is not None
    print(f"revoked {kept.key_id} at {kept.revoked_at:%Y-%m-%dT%H:%M:%SZ}")
    if kept.revoked_at != revoked.revoked_at:
        print("(it was revoked earlier already: a revocation only ever moves earlier)")
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    ring = open_key_storage(settings.resolved_keys_url).load()
    records = [r for r in ring if not args.registry or r.registry_id == args.registry]
    if args.json:
        print(json.dumps([r.to_json() for r in records], indent=2))
        return 0
    now = dt.datetime.now(dt.UTC)
    for r in records:
        state = "active" if r.is_active(now) else ("revoked" if r.revoked_at else "inactive")
        until = r.valid_until.isoformat() if r.valid_until else "-"
        print(
            f"{r.registry_id:<16} {r.key_id:<40} {state:<9} from {r.valid_from.isoformat()} "
            f"until {until}"
        )
    if not records:
        print("no keys registered")
    return 0


def private_key_for(settings: Settings, key_id: str) -> Path:
    return private_key_path(settings.resolved_private_key_dir, key_id)
