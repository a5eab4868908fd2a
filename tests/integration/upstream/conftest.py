"""Fixtures of the upstream-engine tests: one fake upstream server for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_upstream import FakeUpstream, serve


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeUpstream]:
    with serve() as fake:
        yield fake
