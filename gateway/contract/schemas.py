"""Every published version of the event schema, indexed by its CRC-64-AVRO fingerprint.

Files are named ``<subject>.v<N>.avsc``; every version ever published stays in
``schemas/avro/`` so any old message can still be decoded. The highest version of
a subject is the *current* one: the reader schema everything decodes into.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources.abc import Traversable
from typing import Any

from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from gateway import resources

_FILE_NAME = re.compile(r"^(?P<subject>[a-z0-9-]+)\.v(?P<version>[1-9][0-9]*)\.avsc$")

REGISTRY_EVENT = "registry-event"


def schema_dir() -> Traversable:
    """The folder holding the ``.avsc`` files (``schemas/avro/``, packaged)."""
    return resources.schemas() / "avro"


@dataclass(frozen=True)
class SchemaVersion:
    """One stored schema version."""

    subject: str
    version: int
    path: Traversable
    raw: dict[str, Any]
    parsed: dict[str, Any]
    fingerprint: bytes  # 8 bytes, little-endian, as written after C3 01

    @property
    def canonical_form(self) -> str:
        return str(to_parsing_canonical_form(self.parsed))


def load_version(path: Traversable, subject: str, version: int) -> SchemaVersion:
    raw = json.loads(path.read_text(encoding="utf-8"))
    parsed = parse_schema(raw)
    if not isinstance(parsed, dict):
        raise ValueError(f"{path} does not hold a record schema")
    # fastavro's hex digest is already in the little-endian byte order of the spec.
    fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))
    return SchemaVersion(subject, version, path, raw, parsed, fp)


def load_subject(subject: str, directory: Traversable | None = None) -> tuple[SchemaVersion, ...]:
    """All versions of ``subject``, oldest first."""
    directory = directory or schema_dir()
    found = []
    for path in directory.iterdir():
        match = _FILE_NAME.match(path.name)
        if match and match["subject"] == subject:
            found.append(load_version(path, subject, int(match["version"])))
    if not found:
        raise FileNotFoundError(f"no schema versions of {subject!r} in {directory}")
    found.sort(key=lambda v: v.version)
    versions = [v.version for v in found]
    if versions != list(range(1, len(found) + 1)):
        raise ValueError(f"schema versions of {subject!r} are not 1..N without gaps: {versions}")
    return tuple(found)


@cache
def registry_event_versions() -> tuple[SchemaVersion, ...]:
    return load_subject(REGISTRY_EVENT)
