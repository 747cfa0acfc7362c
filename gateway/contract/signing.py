"""Ed25519 signatures over a domain-separation prefix plus the exact value bytes.

Nothing is canonicalised: the signature covers the bytes as sent. The prefix
keeps a registry-event signature from ever being valid for any other message
the same key might sign. Signing uses ``cryptography``; verification, the hot
path of the gateway, uses libsodium through PyNaCl: measured 40 % cheaper per
signature here, it releases the GIL, and it refuses non-canonical signatures.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from gateway.contract.errors import SignatureInvalid

SIGNING_DOMAIN = b"crg.registry-event.v1\x00"
SIGNATURE_SIZE = 64


def sign(private_key: Ed25519PrivateKey, value: bytes, domain: bytes = SIGNING_DOMAIN) -> bytes:
    """Sign ``domain`` + ``value``: each kind of signed statement has its own domain, so a
    signature of one kind is never valid as another."""
    return private_key.sign(domain + value)


def verifier(public_key: bytes) -> VerifyKey:
    """A reusable verifier for a raw 32-byte Ed25519 public key."""
    return VerifyKey(public_key)


def verify(
    public_key: VerifyKey, value: bytes, signature: bytes, domain: bytes = SIGNING_DOMAIN
) -> None:
    """Raise :class:`SignatureInvalid` unless ``signature`` signs ``value`` (in ``domain``)
    under this key."""
    if len(signature) != SIGNATURE_SIZE:
        raise SignatureInvalid(f"signature is {len(signature)} bytes, not {SIGNATURE_SIZE}")
    try:
        public_key.verify(domain + value, signature)
    except BadSignatureError:
        raise SignatureInvalid("signature does not verify over the value") from None


def encode_signature(signature: bytes) -> bytes:
    """Signatures travel base64 (RFC 4648, with padding) in Kafka and HTTP headers."""
    return base64.b64encode(signature)


def decode_signature(text: bytes | str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureInvalid("signature header is not valid base64") from None
