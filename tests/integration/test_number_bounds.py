"""Numbers in queries that reach a database query are bounded by what its columns hold: a larger
offset or cursor is a 400 in the route's shape, not a driver overflow (a 500)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from sogni_intelligence.api.wire import MAX_DB_INT
from tests.conftest import InProcessApp, in_process_app
from tests.integration.runtime.conftest import runtime_settings

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[InProcessApp]:
    data: Path = tmp_path_factory.mktemp("bounds")
    settings = runtime_settings(data, f"sqlite+aiosqlite:///{data / 'sogni.sqlite'}")
    async with in_process_app(settings) as running:
        yield running


@pytest.mark.parametrize(
    "url",
    [
        "/v1/creative-agent/workflows?offset={n}",
        "/v1/creative-agent/workflows/templates?offset={n}",
        "/v1/creative-agent/workflows/wf_missing/events?after={n}",
        "/v1/creative-agent/workflows/wf_missing/events/stream?after={n}",
        "/v1/chat/runs/run_missing/events?after={n}",
        "/v1/chat/runs/run_missing/events/stream?after={n}",
    ],
)
async def test_numbers_past_the_database_range_are_400(app: InProcessApp, url: str) -> None:
    auth = {"Authorization": f"Bearer {app.key}"}
    response = await app.http.get(url.format(n=MAX_DB_INT + 1), headers=auth)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["errorCode"] == 400 and body["error"]["type"] == "invalid_request_error"
    largest = await app.http.get(url.format(n=MAX_DB_INT), headers=auth)
    assert largest.status_code in (200, 404), largest.text
