"""Single-object codec: exact header, round trips, every kind of bad bytes, old versions."""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.contract.codec import HEADER_SIZE, MARKER, SingleObjectCodec, default_codec
from gateway.contract.errors import (
    BadMarker,
    BodyInvalid,
    CodecError,
    MessageTooLarge,
    TrailingBytes,
    Truncated,
    UnknownFingerprint,
)
from gateway.contract.models import RegistryEvent
from gateway.contract.schemas import load_version, registry_event_versions
from tests.factories import ALL_PAYLOADS, envelope, event, registry_events

CODEC = default_codec()


def encoded() -> bytes:
    return CODEC.encode(event().to_avro())


def test_header_is_marker_then_little_endian_crc64_fingerprint() -> None:
    data = encoded()
    assert data[:2] == b"\xc3\x01"
    # The Avro spec's CRC-64-AVRO, written out here independently of fastavro.
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in CODEC.current.canonical_form.encode():
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    assert data[2:10] == fp.to_bytes(8, "little")


@pytest.mark.parametrize("make", ALL_PAYLOADS, ids=lambda f: f.__name__)
def test_every_event_type_round_trips(make) -> None:  # type: ignore[no-untyped-def]
    original = RegistryEvent.model_validate(envelope(make()))
    data = CODEC.encode(original.to_avro())
    assert RegistryEvent.from_avro(CODEC.decode(data)) == original


@settings(max_examples=300, deadline=None)
@given(registry_events())
def test_any_valid_event_round_trips_through_avro(original: RegistryEvent) -> None:
    data = CODEC.encode(original.to_avro())
    assert RegistryEvent.from_avro(CODEC.decode(data)) == original
    assert CODEC.encode(RegistryEvent.from_avro(CODEC.decode(data)).to_avro()) == data


def test_empty_input_is_truncated() -> None:
    with pytest.raises(Truncated):
        CODEC.decode(b"")


@pytest.mark.parametrize("cut", [1, 2, 5, 9])
def test_cut_inside_the_header_is_truncated(cut: int) -> None:
    with pytest.raises(Truncated):
        CODEC.decode(encoded()[:cut])


def test_cut_inside_the_body_is_truncated() -> None:
    data = encoded()
    for cut in range(HEADER_SIZE, len(data)):
        with pytest.raises(Truncated):
            CODEC.decode(data[:cut])


def test_cut_inside_the_body_reports_truncation_when_a_string_runs_past_the_end() -> None:
    data = encoded()
    with pytest.raises(Truncated):
        CODEC.decode(data[: len(data) - 3])


@pytest.mark.parametrize("marker", [b"\x00\x00", b"\xc3\x02", b"\xc2\x01", b"PK", b'{"'])
def test_wrong_marker(marker: bytes) -> None:
    data = encoded()
    with pytest.raises(BadMarker):
        CODEC.decode(marker + data[2:])


def test_unknown_fingerprint() -> None:
    data = bytearray(encoded())
    data[5] ^= 0xFF
    with pytest.raises(UnknownFingerprint):
        CODEC.decode(bytes(data))


def test_trailing_garbage() -> None:
    with pytest.raises(TrailingBytes):
        CODEC.decode(encoded() + b"\x00")


def test_oversize_message_is_refused_before_decoding() -> None:
    small = SingleObjectCodec(registry_event_versions(), max_size=64)
    with pytest.raises(MessageTooLarge):
        small.decode(encoded())
    with pytest.raises(MessageTooLarge):
        small.encode(event().to_avro())


def test_bad_union_index_is_body_invalid() -> None:
    # event_id "a", registry_id "b", project_id "c", sequence 1, occurred_at 0, then the
    # payload's union branch 63 (zig-zag 0x7e) of six.
    body = b"\x02a\x02b\x02c\x02\x00\x7e"
    with pytest.raises(BodyInvalid):
        CODEC.decode(MARKER + CODEC.current.fingerprint + body)


def test_invalid_utf8_is_body_invalid() -> None:
    data = bytearray(encoded())
    # event_id "evt-1" is the first body field: length byte then 5 bytes of UTF-8
    assert data[HEADER_SIZE + 1 : HEADER_SIZE + 6] == b"evt-1"
    data[HEADER_SIZE + 1] = 0xFF
    with pytest.raises(BodyInvalid):
        CODEC.decode(bytes(data))


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_codec_errors(data: bytes) -> None:
    with contextlib.suppress(CodecError):
        CODEC.decode(data)


@settings(max_examples=2000, deadline=None)
@given(st.data())
def test_bit_flipped_messages_raise_codec_errors_or_decode_whole(data: st.DataObject) -> None:
    original = bytearray(encoded())
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(original) - 1))
        original[position] ^= 1 << data.draw(st.integers(0, 7))
    try:
        record = CODEC.decode(bytes(original))
    except CodecError:
        return
    assert set(record) == {
        "event_id",
        "registry_id",
        "project_id",
        "sequence",
        "occurred_at",
        "payload",
    }


def _older_version(tmp_path: Path) -> tuple[SingleObjectCodec, SingleObjectCodec]:
    """A v0 without ``project.sector`` written by an old publisher, and a codec knowing both."""
    current = registry_event_versions()[-1]
    old_raw = copy.deepcopy(current.raw)
    issued = old_raw["fields"][-1]["type"][0]
    project = issued["fields"][0]["type"]
    project["fields"] = [f for f in project["fields"] if f["name"] != "sector"]
    path = tmp_path / "old.avsc"
    path.write_text(json.dumps(old_raw))
    old = load_version(path, "registry-event", 0)
    return SingleObjectCodec([old]), SingleObjectCodec([old, current])


def test_an_older_version_decodes_into_the_current_one(tmp_path: Path) -> None:
    old_codec, both = _older_version(tmp_path)
    record = event().to_avro()
    record["payload"][1]["project"].pop("sector")
    data = old_codec.encode(record)
    assert data[2:10] != CODEC.current.fingerprint
    decoded = RegistryEvent.from_avro(both.decode(data))
    assert decoded.payload.project.sector is None  # type: ignore[union-attr]
    assert decoded.payload.project.host_party == "RWA"  # type: ignore[union-attr]
    with pytest.raises(UnknownFingerprint):
        CODEC.decode(data)
