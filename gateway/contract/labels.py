"""Labels on units (Article 6 authorization, corresponding adjustment, CORSIA…) as the
ledgers store them: one canonical JSON text per label, and what makes two labels the same."""

from __future__ import annotations

import functools
import json
from typing import Any

from gateway.contract.models import Label


@functools.lru_cache(maxsize=4096)
def label_json(label: Label) -> str:
    """Canonical JSON of a label, as stored on blocks. Cached: labels repeat (a host
    Party writes few letters of authorization), and a label is frozen, so hashable."""
    return json.dumps(label.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def label_identity(label: dict[str, Any] | Label) -> tuple[Any, ...]:
    """What makes two labels 'the same label' for revocation: kind, wording, host Party
    and letter of authorization (dates and uses may be restated differently)."""
    data = label.model_dump(mode="json") if isinstance(label, Label) else label
    return (data["kind"], data["text"], data.get("host_party"), data.get("letter_of_authorization"))
