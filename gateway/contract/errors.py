"""Typed errors of the contract layer. Each carries its stable reason code
(:class:`gateway.contract.reasons.Reason`)."""

from __future__ import annotations

from gateway.contract.reasons import Reason


class ContractError(Exception):
    """Base of every error raised on bad input to the contract layer."""

    reason: Reason = Reason.UNDECODABLE


class CodecError(ContractError):
    """The bytes are not a decodable single-object encoded event."""

    reason = Reason.UNDECODABLE


class MessageTooLarge(CodecError):
    reason = Reason.UNDECODABLE_TOO_LARGE


class BadMarker(CodecError):
    reason = Reason.UNDECODABLE_BAD_MARKER


class Truncated(CodecError):
    reason = Reason.UNDECODABLE_TRUNCATED


class UnknownFingerprint(CodecError):
    reason = Reason.UNDECODABLE_UNKNOWN_SCHEMA


class TrailingBytes(CodecError):
    reason = Reason.UNDECODABLE_TRAILING_BYTES


class BodyInvalid(CodecError):
    reason = Reason.UNDECODABLE_BODY


class SignatureError(ContractError):
    """The value's signature does not verify, or the signing key may not be used."""

    reason = Reason.SIGNATURE_INVALID


class SignatureInvalid(SignatureError):
    reason = Reason.SIGNATURE_INVALID


class SignatureMissing(SignatureError):
    reason = Reason.SIGNATURE_MISSING


class KeyUnknown(SignatureError):
    reason = Reason.KEY_UNKNOWN


class KeyNotThisRegistry(SignatureError):
    reason = Reason.KEY_WRONG_REGISTRY


class KeyRevoked(SignatureError):
    reason = Reason.KEY_REVOKED


class KeyNotValidYet(SignatureError):
    reason = Reason.KEY_NOT_YET_VALID


class KeyExpired(SignatureError):
    reason = Reason.KEY_EXPIRED
