"""Every HTTP interface the product serves or calls is an OpenAPI file in
``schemas/openapi/``, valid OpenAPI 3.1; the servers fill in only their own settings."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from adapters.national.http import document as national_document
from gateway import resources
from gateway.service.http.openapi import document as gateway_document

NAMES = sorted(
    f.name.removesuffix(".json")
    for f in (resources.schemas() / "openapi").iterdir()
    if f.name.endswith(".json")
)


def test_the_documents_are_the_three_interfaces() -> None:
    assert NAMES == ["gateway.v1", "international-registry.v1", "national-registry.v1"]


@pytest.mark.parametrize("name", NAMES)
def test_each_document_is_valid_openapi(name: str) -> None:
    doc: dict[str, Any] = resources.openapi(name)
    validate(doc)  # type: ignore[arg-type]
    broken = copy.deepcopy(doc)
    first_operation = next(iter(next(iter(broken["paths"].values())).values()))
    first_operation["parameters"] = [{"name": "where"}]  # no "in": not a parameter
    with pytest.raises(OpenAPIValidationError):
        validate(broken)  # type: ignore[arg-type]


def test_the_servers_fill_in_their_own_settings_only() -> None:
    served = gateway_document(12_345)
    body = served["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/avro"]
    assert body["schema"]["maxLength"] == 12_345
    assert gateway_document(1)["paths"] != served["paths"]  # a fresh copy each time
    national = national_document("GHA")
    assert national["info"]["title"] == "National ITMO registry (GHA)"
    assert national["paths"] == resources.openapi("national-registry.v1")["paths"]
