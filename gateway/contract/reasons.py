"""Stable reason codes for every verdict the gateway gives, like the ITL's response codes.

The table in ``docs/reason-codes.md`` is checked against this module by a test.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # authenticity (each raised as its error of gateway.contract.errors)
    SIGNATURE_MISSING = "signature_missing"
    SIGNATURE_INVALID = "signature_invalid"
    KEY_UNKNOWN = "key_unknown"
    KEY_WRONG_REGISTRY = "key_wrong_registry"
    KEY_REVOKED = "key_revoked"
    KEY_NOT_YET_VALID = "key_not_yet_valid"
    KEY_EXPIRED = "key_expired"
    # what a consumer of the verified topic refuses (gateway/contract/attestation.py)
    ATTESTATION_MISSING = "attestation_missing"
    ATTESTATION_INVALID = "attestation_invalid"
    # form
    UNDECODABLE = "undecodable"
    UNDECODABLE_TOO_LARGE = "undecodable.too_large"
    UNDECODABLE_BAD_MARKER = "undecodable.bad_marker"
    UNDECODABLE_TRUNCATED = "undecodable.truncated"
    UNDECODABLE_UNKNOWN_SCHEMA = "undecodable.unknown_schema"
    UNDECODABLE_TRAILING_BYTES = "undecodable.trailing_bytes"
    UNDECODABLE_BODY = "undecodable.body"
    MODEL_INVALID = "model_invalid"
    # identity and order
    PARTITION_NOT_OF_KEY = "partition_not_of_key"
    DUPLICATE_REPEAT = "duplicate_repeat"  # identical bytes: dropped, counted, not an error
    EVENT_ID_CONFLICT = "event_id_conflict"
    SEQUENCE_REPEAT = "sequence_repeat"
    # the ledger
    ISSUANCE_OVERLAP = "issuance_overlap"
    UNITS_NOT_FOUND = "units_not_found"
    PROJECT_MISMATCH = "project_mismatch"
    UNITS_NOT_HELD = "units_not_held"
    UNITS_NOT_ACTIVE = "units_not_active"
    UNITS_MIXED_STATE = "units_mixed_state"
    LABEL_HOST_MISMATCH = "label_host_mismatch"
    LABEL_NOT_PRESENT = "label_not_present"


#: codes a consumer of the verified topic gives, never the gateway
CONSUMER_REASONS = frozenset({Reason.ATTESTATION_MISSING, Reason.ATTESTATION_INVALID})
