"""The canonical label JSON stored on blocks: cached, so equal labels must share one text
and labels that differ in anything must not."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from gateway.contract.labels import label_json
from gateway.contract.models import Label

A6: dict[str, Any] = {
    "kind": "ARTICLE6_AUTHORIZATION",
    "text": "A6 NDC",
    "host_party": "GHA",
    "authorized_uses": [{"purpose": "NDC"}],
    "letter_of_authorization": "LoA-1",
}


def test_equal_labels_share_the_canonical_text() -> None:
    first, second = Label.model_validate(A6), Label.model_validate(dict(reversed(A6.items())))
    assert first is not second
    assert label_json(first) == label_json(second)
    assert json.loads(label_json(first)) == first.model_dump(mode="json")


def test_labels_differing_in_any_field_have_different_texts() -> None:
    variants = [
        {"text": "A6 NDC and OIMP"},
        {"host_party": "CHE"},
        {"letter_of_authorization": "LoA-2"},
        {"authorized_uses": [{"purpose": "OIMP", "oimp_scheme": "CORSIA"}]},
        {"effective_from": dt.date(2030, 1, 1)},
        {"cooperative_approach": "CA0002"},
    ]
    texts = {label_json(Label.model_validate(A6))}
    for change in variants:
        label = Label.model_validate({**A6, **change})
        text = label_json(label)
        assert json.loads(text) == label.model_dump(mode="json")
        texts.add(text)
    assert len(texts) == len(variants) + 1
