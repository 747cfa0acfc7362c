"""A project's identity across registries, to spot the same project issued twice."""

from __future__ import annotations

import re
import unicodedata

_STOP_WORDS = {
    "project",
    "projects",
    "the",
    "of",
    "and",
    "in",
    "a",
    "grouped",
    "programme",
    "program",
    "poa",
    "cpa",
}


def project_identity(host_party: str, name: str | None) -> str | None:
    """``<host Party>:<name folded>``: accents, case, punctuation and filler words removed.
    None when the registry gave no name (no identity to compare)."""
    if not name:
        return None
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().casefold()
    words = [w for w in re.split(r"[^a-z0-9]+", folded) if w and w not in _STOP_WORDS]
    return f"{host_party}:{' '.join(words)}" if words else None
