"""Registry public keys and the rule for when a key may sign an event.

A key belongs to one registry and may sign events whose ``occurred_at`` lies in
``[valid_from, valid_until]`` and before ``revoked_at``. Revocation is judged at the
event's time, so events signed before a routine revocation stay valid; after a
compromise, revoke *at the estimated time of compromise*, not at the time of noticing.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nacl.signing import VerifyKey

from gateway.contract.errors import (
    KeyExpired,
    KeyNotThisRegistry,
    KeyNotValidYet,
    KeyRevoked,
    KeyUnknown,
)
from gateway.contract.signing import SIGNING_DOMAIN, verifier, verify
from gateway.contract.time import utc_text


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else utc_text(value)


def _parse(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"key timestamp {value!r} has no time zone")
    return parsed.astimezone(dt.UTC)


#: who may own a key: a registry (its id, as events carry it), the gateway
#: (``crg:gateway``) or a Party (``party:GHA``); a key id is written from its owner
REGISTRY_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
KEY_OWNER = re.compile(r"^(?:[a-z0-9][a-z0-9._-]{0,63}|crg:gateway|party:[A-Z]{3})$")
KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def check_owner(owner: str) -> str:
    """``owner`` if it can own a key; else ValueError (ids reach file names and URLs)."""
    if not KEY_OWNER.match(owner):
        raise ValueError(
            f"{owner!r} cannot own a key: a registry id is lower-case letters, digits, '.', "
            "'_' and '-' (at most 64), or crg:gateway, or party:<alpha-3>"
        )
    return owner


@dataclass(frozen=True)
class KeyRecord:
    """A registry's public key with its validity window. Holds no private material."""

    registry_id: str
    key_id: str
    public_key: bytes  # raw 32-byte Ed25519 public key
    valid_from: dt.datetime
    valid_until: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    revocation_reason: str | None = None

    def __post_init__(self) -> None:
        check_owner(self.registry_id)
        if not KEY_ID.match(self.key_id) or ".." in self.key_id:
            raise ValueError(f"{self.key_id!r} is not a key id (letters, digits, . _ : -)")
        if len(self.public_key) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        for name in ("valid_from", "valid_until", "revoked_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} must carry a time zone")

    def check_usable_at(self, registry_id: str, at: dt.datetime) -> None:
        """Raise the precise key error if this key may not sign for ``registry_id`` at ``at``."""
        if registry_id != self.registry_id:
            raise KeyNotThisRegistry(
                f"key {self.key_id} belongs to registry {self.registry_id!r}, not {registry_id!r}"
            )
        if self.revoked_at is not None and at >= self.revoked_at:
            raise KeyRevoked(f"key {self.key_id} was revoked at {_iso(self.revoked_at)}")
        if at < self.valid_from:
            raise KeyNotValidYet(f"key {self.key_id} is valid from {_iso(self.valid_from)}")
        if self.valid_until is not None and at > self.valid_until:
            raise KeyExpired(f"key {self.key_id} expired at {_iso(self.valid_until)}")

    def is_active(self, at: dt.datetime) -> bool:
        try:
            self.check_usable_at(self.registry_id, at)
        except Exception:
            return False
        return True

    @property
    def public_key_b64(self) -> str:
        return base64.b64encode(self.public_key).decode()

    def to_json(self) -> dict[str, Any]:
        return {
            "registry_id": self.registry_id,
            "key_id": self.key_id,
            "public_key": self.public_key_b64,
            "valid_from": _iso(self.valid_from),
            "valid_until": _iso(self.valid_until),
            "revoked_at": _iso(self.revoked_at),
            "revocation_reason": self.revocation_reason,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyRecord:
        valid_from = _parse(data["valid_from"])
        assert valid_from is not None
        return cls(
            registry_id=data["registry_id"],
            key_id=data["key_id"],
            public_key=base64.b64decode(data["public_key"], validate=True),
            valid_from=valid_from,
            valid_until=_parse(data.get("valid_until")),
            revoked_at=_parse(data.get("revoked_at")),
            revocation_reason=data.get("revocation_reason"),
        )


def public_key_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def make_key_id(registry_id: str, public_key: bytes, created: dt.datetime) -> str:
    """``<registry>-<yyyymmdd>-<first 8 hex of SHA-256(public key)>``: readable and unique."""
    return f"{registry_id}-{created:%Y%m%d}-{hashlib.sha256(public_key).hexdigest()[:8]}"


def _earliest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _tightened(existing: KeyRecord, new: KeyRecord) -> KeyRecord:
    """``existing`` with what ``new`` may change of it (:meth:`KeyRing.put`)."""
    if new.registry_id != existing.registry_id:
        raise ValueError(
            f"key id {new.key_id} belongs to {existing.registry_id!r}: a key id never changes owner"
        )
    if new.public_key != existing.public_key:
        raise ValueError(f"key id {new.key_id} is already registered with another key")
    revoked_at = _earliest(existing.revoked_at, new.revoked_at)
    reason = (
        new.revocation_reason
        if revoked_at is not None and revoked_at == new.revoked_at != existing.revoked_at
        else existing.revocation_reason
    )
    return replace(
        existing,
        valid_until=_earliest(existing.valid_until, new.valid_until),
        revoked_at=revoked_at,
        revocation_reason=reason,
    )


class KeyRing:
    """The known public keys of every registry, in memory; the pure part of the key store."""

    def __init__(self, records: Iterable[KeyRecord] = ()) -> None:
        self._records: dict[str, KeyRecord] = {}
        self._public: dict[str, VerifyKey] = {}
        for record in records:
            self.put(record)

    def put(self, record: KeyRecord) -> KeyRecord:
        """Add a record, or merge it into the one of the same key id; return what is kept.

        The trust store only ever tightens: a key id keeps its owner and its public key;
        one public key belongs to one owner; a revocation can move earlier, never later
        nor away (registering the key again keeps it revoked); the end of validity can be
        set or moved earlier, never later nor away. Anything else is a ValueError."""
        existing = self._records.get(record.key_id)
        if existing is not None:
            record = _tightened(existing, record)
        for other in self._records.values():
            if other.public_key == record.public_key and other.registry_id != record.registry_id:
                raise ValueError(
                    f"this public key is registered for {other.registry_id!r} ({other.key_id}):"
                    f" one key belongs to one owner"
                )
        self._records[record.key_id] = record
        self._public[record.key_id] = verifier(record.public_key)
        return record

    def get(self, key_id: str) -> KeyRecord:
        try:
            return self._records[key_id]
        except KeyError:
            raise KeyUnknown(f"no key {key_id!r} is registered") from None

    def __iter__(self) -> Iterator[KeyRecord]:
        return iter(sorted(self._records.values(), key=lambda r: (r.registry_id, r.valid_from)))

    def __len__(self) -> int:
        return len(self._records)

    def for_registry(self, registry_id: str) -> list[KeyRecord]:
        return [r for r in self if r.registry_id == registry_id]

    def verify(
        self, key_id: str, value: bytes, signature: bytes, domain: bytes = SIGNING_DOMAIN
    ) -> KeyRecord:
        """Check the signature with the named key; validity is checked once the time is known."""
        record = self.get(key_id)
        verify(self._public[key_id], value, signature, domain)
        return record

    def rotated(
        self, new: KeyRecord, *, overlap: dt.timedelta = dt.timedelta(hours=1)
    ) -> list[KeyRecord]:
        """Records to store for a rotation: ``new``, and the registry's open keys closed
        ``overlap`` after the new key's start so events in flight still verify."""
        close_at = new.valid_from + overlap
        changed = [new]
        for record in self.for_registry(new.registry_id):
            if record.key_id == new.key_id or record.revoked_at is not None:
                continue
            if record.valid_until is None or record.valid_until > close_at:
                changed.append(replace(record, valid_until=close_at))
        return changed
