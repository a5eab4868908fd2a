"""A launched workflow runtime (DBOS and our records on a SQLite file or on PostgreSQL, and a
real asset store), and the whole app in process with two keys."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from sogni_intelligence.config import Settings
from sogni_intelligence.media.fetch import FetchPolicy
from sogni_intelligence.media.signing import UrlSigner
from sogni_intelligence.media.store import AssetStore
from sogni_intelligence.runtime import durable
from sogni_intelligence.runtime.workflow_steps import WorkflowDeps
from sogni_intelligence.runtime.workflows import WorkflowRuntime
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.records import RecordStore
from sogni_intelligence.tools.base import ToolServices
from tests.conftest import fresh_postgres_database, in_process_app
from tests.integration.runtime.processes import kill


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Children of the test; whatever is still alive at the end is killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            kill(proc)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture(params=["sqlite", "postgres"])
def runtime_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database of its own per test: DBOS would otherwise recover other tests' workflows."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'sogni.sqlite'}"
    return fresh_postgres_database("runtime")


def runtime_settings(data_dir: Path, database_url: str, **overrides: object) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        models=[{"id": "m", "engine": "upstream", "base_url": "http://127.0.0.1:9/v1"}],
        default_model="m",
        **overrides,  # type: ignore[arg-type]
    )


@pytest_asyncio.fixture
async def runtime(tmp_path: Path, runtime_database_url: str) -> AsyncIterator[WorkflowRuntime]:
    settings = runtime_settings(tmp_path, runtime_database_url)
    db = Database(settings.resolved_database_url)
    await db.create_all()
    assets = AssetStore(db, tmp_path / "media", UrlSigner(b"k" * 32, "http://media.test", 3600))
    deps = WorkflowDeps(
        RecordStore(db, poll_interval_s=0.05),
        assets,
        FetchPolicy.from_settings(settings),
        ToolServices(),
    )
    runtime = WorkflowRuntime(deps)
    runtime.launch()
    await durable.launch(settings)
    yield runtime
    durable.shutdown()
    await db.close()


@asynccontextmanager
async def app_with_two_keys(
    settings: Settings, timeout_s: float
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, str, str]]:
    """The whole app in process and two keys (the second one checks that records stay
    invisible to other keys)."""
    async with in_process_app(settings, timeout_s) as running:
        other, _ = await running.app.state.server.keys.create("other")
        yield running.app, running.http, running.key, other
