"""Each Avro schema version ships its Parsing Canonical Form beside it
(``<subject>.vN.canonical.json``): what the CRC-64-AVRO fingerprint on the wire is taken
over, for publishers whose Avro library canonicalises otherwise (Apache ``avro``'s Python
``Schema.fingerprint()`` keeps ``{"type": "long"}`` for logical types)."""

from __future__ import annotations

import pytest
from fastavro.schema import fingerprint

from gateway import resources
from gateway.contract.schemas import load_subject

VERSIONS = [
    v for s in ("registry-event", "itmo-action", "party-authorization") for v in load_subject(s)
]


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: f"{v.subject}.v{v.version}")
def test_the_canonical_form_beside_each_schema_gives_the_fingerprint_on_the_wire(
    version: object,
) -> None:
    name = f"{version.subject}.v{version.version}.canonical.json"  # type: ignore[attr-defined]
    shipped = (resources.schemas() / "avro" / name).read_text(encoding="utf-8").strip()
    assert shipped == version.canonical_form  # type: ignore[attr-defined]
    wire = bytes.fromhex(fingerprint(shipped, "CRC-64-AVRO"))
    assert wire == version.fingerprint  # type: ignore[attr-defined]
