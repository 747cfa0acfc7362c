"""Typed errors of the contract layer. Each carries a stable ``reason`` code."""

from __future__ import annotations


class ContractError(Exception):
    """Base of every error raised on bad input to the contract layer."""

    reason = "contract_error"


class CodecError(ContractError):
    """The bytes are not a decodable single-object encoded event."""

    reason = "undecodable"


class MessageTooLarge(CodecError):
    reason = "undecodable.too_large"


class BadMarker(CodecError):
    reason = "undecodable.bad_marker"


class Truncated(CodecError):
    reason = "undecodable.truncated"


class UnknownFingerprint(CodecError):
    reason = "undecodable.unknown_schema"


class TrailingBytes(CodecError):
    reason = "undecodable.trailing_bytes"


class BodyInvalid(CodecError):
    reason = "undecodable.body"


class SignatureError(ContractError):
    """The value's signature does not verify, or the signing key may not be used."""

    reason = "signature_invalid"


class SignatureInvalid(SignatureError):
    reason = "signature_invalid"


class SignatureMissing(SignatureError):
    reason = "signature_missing"


class KeyUnknown(SignatureError):
    reason = "key_unknown"


class KeyNotThisRegistry(SignatureError):
    reason = "key_wrong_registry"


class KeyRevoked(SignatureError):
    reason = "key_revoked"


class KeyNotValidYet(SignatureError):
    reason = "key_not_yet_valid"


class KeyExpired(SignatureError):
    reason = "key_expired"
