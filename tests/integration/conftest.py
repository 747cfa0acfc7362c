"""Fixtures of the integration tests that several modules share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.national.store import NationalStore, open_national_store
from tests.conftest import pg_schema_url
from tests.integration.national import Opener


@pytest.fixture(params=["sqlite", "postgresql"])
def open_party(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens stores of one backend; each Party (and each name) its own database."""
    opened: list[NationalStore] = []

    def open_store(party: str, name: str) -> NationalStore:
        if request.param == "sqlite":
            url = f"sqlite://{tmp_path / f'{name}.sqlite'}"
        else:
            url = pg_schema_url(request)
        opened.append(open_national_store(url, party))
        return opened[-1]

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def ghana(open_party: Opener) -> NationalStore:
    return open_party("GHA", "gha")
