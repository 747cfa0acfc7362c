"""Avro single-object encoding (``C3 01`` + CRC-64-AVRO fingerprint + binary body).

Decoding resolves the writer's schema by fingerprint among every stored version
and reads into the current version. Every way bytes can be bad raises one typed
:class:`~gateway.contract.errors.CodecError`; nothing partial is ever returned.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from gateway.contract.errors import (
    BadMarker,
    BodyInvalid,
    MessageTooLarge,
    TrailingBytes,
    Truncated,
    UnknownFingerprint,
)
from gateway.contract.schemas import SchemaVersion, registry_event_versions

MARKER = b"\xc3\x01"
HEADER_SIZE = len(MARKER) + 8
DEFAULT_MAX_SIZE = 64 * 1024


class SingleObjectCodec:
    """Encode with the current schema; decode any stored version into the current one."""

    def __init__(
        self, versions: Sequence[SchemaVersion], *, max_size: int = DEFAULT_MAX_SIZE
    ) -> None:
        if not versions:
            raise ValueError("a codec needs at least one schema version")
        self.current = versions[-1]
        self.max_size = max_size
        self._writers = {v.fingerprint: v for v in versions}
        if len(self._writers) != len(versions):
            raise ValueError("two stored schema versions have the same fingerprint")
        self._header = MARKER + self.current.fingerprint

    def encode(self, record: dict[str, Any]) -> bytes:
        out = io.BytesIO()
        out.write(self._header)
        schemaless_writer(out, self.current.parsed, record)
        data = out.getvalue()
        if len(data) > self.max_size:
            raise MessageTooLarge(f"encoded event is {len(data)} bytes, limit {self.max_size}")
        return data

    def writer_version(self, data: bytes) -> SchemaVersion:
        """The stored schema version that wrote ``data``, after checking size and header."""
        if len(data) > self.max_size:
            raise MessageTooLarge(f"message is {len(data)} bytes, limit {self.max_size}")
        if len(data) < HEADER_SIZE:
            if MARKER.startswith(data[:2]):
                raise Truncated(f"message is {len(data)} bytes, shorter than the 10-byte header")
            raise BadMarker(f"message does not start with C3 01 (got {data[:2].hex()})")
        if data[:2] != MARKER:
            raise BadMarker(f"message does not start with C3 01 (got {data[:2].hex()})")
        writer = self._writers.get(bytes(data[2:HEADER_SIZE]))
        if writer is None:
            raise UnknownFingerprint(
                f"no stored schema has fingerprint {bytes(data[2:HEADER_SIZE]).hex()}"
            )
        return writer

    def decode(self, data: bytes) -> dict[str, Any]:
        writer = self.writer_version(data)
        body = io.BytesIO(data)
        body.seek(HEADER_SIZE)
        reader = None if writer is self.current else self.current.parsed
        try:
            record = schemaless_reader(
                body,
                writer.parsed,
                reader,
                return_record_name=True,
                return_record_name_override=True,
            )
        except EOFError as exc:
            raise Truncated(f"body ends early: {exc}") from None
        except IndexError as exc:
            if "string index" in str(exc):  # fastavro's varint reader ran past the end
                raise Truncated("body ends early inside a number") from None
            raise BodyInvalid(f"body does not decode: {exc}") from None
        except Exception as exc:  # fastavro raises many types on hostile input
            raise BodyInvalid(f"body does not decode: {type(exc).__name__}: {exc}") from None
        if body.tell() != len(data):
            raise TrailingBytes(f"{len(data) - body.tell()} bytes after the end of the body")
        if not isinstance(record, dict):
            raise BodyInvalid("body is not a record")
        return record


_default: SingleObjectCodec | None = None


def default_codec() -> SingleObjectCodec:
    """The codec over every stored version of the registry event schema."""
    global _default
    if _default is None:
        _default = SingleObjectCodec(registry_event_versions())
    return _default
