"""A launched workflow runtime: DBOS and our records on a SQLite file or on PostgreSQL, and a
real asset store."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from sogni_intelligence.config import Settings
from sogni_intelligence.media.fetch import FetchPolicy
from sogni_intelligence.media.signing import UrlSigner
from sogni_intelligence.media.store import AssetStore
from sogni_intelligence.runtime import durable
from sogni_intelligence.runtime.records import RecordStore
from sogni_intelligence.runtime.workflows import WorkflowDeps, WorkflowRuntime
from sogni_intelligence.store.db import Database
from tests.conftest import POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgres"])
def runtime_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own per test: DBOS would otherwise recover other tests' workflows.

    The PostgreSQL database is left in place: the test server is thrown away after the run, and
    dropping it under a DBOS thread that is still recording a step makes that thread retry
    forever, which keeps the interpreter from exiting."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'sogni.sqlite'}"
        return
    if not POSTGRES_URL:
        pytest.skip("SOGNI_TEST_POSTGRES_URL is not set (make test starts a server)")
    name = f"runtime_{secrets.token_hex(6)}"
    server = make_url(POSTGRES_URL)
    admin = create_engine(server.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    yield server.set(database=name).render_as_string(hide_password=False)


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
        RecordStore(db, poll_interval_s=0.05), assets, FetchPolicy.from_settings(settings), {}
    )
    runtime = WorkflowRuntime(deps)
    runtime.launch()
    await durable.launch(settings)
    yield runtime
    durable.shutdown()
    await db.close()
