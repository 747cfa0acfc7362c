"""Schema versions: documented, loadable, and fully compatible with every earlier version."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import avro.schema
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from gateway.contract.schemas import load_subject, registry_event_versions, schema_dir


def compatible(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
    result = ReaderWriterCompatibilityChecker().get_compatibility(
        avro.schema.parse(json.dumps(reader)), avro.schema.parse(json.dumps(writer))
    )
    return result.compatibility is SchemaCompatibilityType.compatible


def fully_compatible_with_all(versions: list[dict[str, Any]]) -> list[str]:
    """Every pair, both directions: new reads old (backward), old reads new (forward)."""
    problems = []
    for (i, old), (j, new) in itertools.combinations(enumerate(versions, 1), 2):
        if not compatible(new, old):
            problems.append(f"v{j} cannot read v{i} (backward)")
        if not compatible(old, new):
            problems.append(f"v{i} cannot read v{j} (forward)")
    return problems


SUBJECTS = ["registry-event", "itmo-action", "party-authorization"]


def test_every_schema_file_belongs_to_a_tested_subject() -> None:
    subjects = {path.name.split(".v")[0] for path in schema_dir().glob("*.avsc")}
    assert subjects == set(SUBJECTS)


@pytest.mark.parametrize("subject", SUBJECTS)
def test_every_stored_version_is_fully_compatible_with_every_earlier_one(subject: str) -> None:
    versions = [v.raw for v in load_subject(subject)]
    assert versions, "no stored schema versions"
    assert fully_compatible_with_all(versions) == []


def _field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


def test_checker_accepts_an_optional_field_with_a_default() -> None:
    v1 = registry_event_versions()[-1].raw
    v2 = copy.deepcopy(v1)
    v2["fields"].append({"name": "note", "type": ["null", "string"], "default": None, "doc": "x"})
    assert fully_compatible_with_all([v1, v2]) == []


def test_checker_rejects_a_new_required_field() -> None:
    v1 = registry_event_versions()[-1].raw
    v2 = copy.deepcopy(v1)
    v2["fields"].append({"name": "note", "type": "string", "doc": "x"})
    assert fully_compatible_with_all([v1, v2]) == ["v2 cannot read v1 (backward)"]


def test_checker_rejects_a_new_event_type_as_not_forward_compatible() -> None:
    v1 = registry_event_versions()[-1].raw
    v2 = copy.deepcopy(v1)
    _field(v2, "payload")["type"].append(
        {"type": "record", "name": "UnitsBurned", "fields": [{"name": "x", "type": "long"}]}
    )
    assert fully_compatible_with_all([v1, v2]) == ["v1 cannot read v2 (forward)"]


def test_checker_is_transitive_over_three_versions() -> None:
    """Each neighbour pair is fully compatible, v1 and v3 are not: only a transitive
    check (every pair, not just neighbours) sees it."""
    base = registry_event_versions()[-1].raw
    v1 = copy.deepcopy(base)
    v1["fields"].append({"name": "x", "type": "string", "default": "a"})
    v2 = copy.deepcopy(base)  # x removed: readers of either side fill or skip it
    v3 = copy.deepcopy(base)
    v3["fields"].append({"name": "x", "type": "long", "default": 0})
    assert fully_compatible_with_all([v1, v2]) == []
    assert fully_compatible_with_all([v2, v3]) == []
    assert fully_compatible_with_all([v1, v2, v3]) == [
        "v3 cannot read v1 (backward)",
        "v1 cannot read v3 (forward)",
    ]


def _walk_named(schema: Any, seen: list[dict[str, Any]]) -> None:
    if isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed"):
            seen.append(schema)
        for value in schema.values():
            _walk_named(value, seen)
    elif isinstance(schema, list):
        for item in schema:
            _walk_named(item, seen)


@pytest.mark.parametrize(
    "version",
    [v for subject in SUBJECTS for v in load_subject(subject)],
    ids=lambda v: f"{v.subject}.v{v.version}",
)
def test_every_field_and_named_type_is_documented(version: Any) -> None:
    named: list[dict[str, Any]] = []
    _walk_named(version.raw, named)
    undocumented = [n["name"] for n in named if n.get("type") == "record" and not n.get("doc")]
    for n in named:
        if n.get("type") == "record":
            undocumented += [f"{n['name']}.{f['name']}" for f in n["fields"] if not f.get("doc")]
    assert undocumented == []


def test_shared_named_types_exist() -> None:
    named: list[dict[str, Any]] = []
    _walk_named(registry_event_versions()[-1].raw, named)
    names = {n["name"] for n in named}
    assert {
        "SerialBlock",
        "Project",
        "Label",
        "PartyCode",
        "UnitsIssued",
        "UnitsTransferred",
        "AuthorizationLabelApplied",
        "AuthorizationLabelRevoked",
        "UnitsRetired",
        "UnitsCancelled",
    } <= names


def test_versions_must_be_numbered_without_gaps(tmp_path: Path) -> None:
    source = registry_event_versions()[-1].path
    (tmp_path / "registry-event.v1.avsc").write_text(source.read_text())
    (tmp_path / "registry-event.v3.avsc").write_text(source.read_text())
    with pytest.raises(ValueError, match="without gaps"):
        load_subject("registry-event", tmp_path)


def test_schema_files_live_in_the_repository_folder() -> None:
    assert (schema_dir() / "registry-event.v1.avsc").exists()
