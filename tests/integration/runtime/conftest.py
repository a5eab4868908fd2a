"""A launched workflow runtime: DBOS on a SQLite file, our records, a real asset store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from sogni_intelligence.config import Settings
from sogni_intelligence.media.fetch import FetchPolicy
from sogni_intelligence.media.signing import UrlSigner
from sogni_intelligence.media.store import AssetStore
from sogni_intelligence.runtime import durable
from sogni_intelligence.runtime.records import RecordStore
from sogni_intelligence.runtime.workflows import WorkflowDeps, WorkflowRuntime
from sogni_intelligence.store.db import Database


@pytest_asyncio.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[WorkflowRuntime]:
    settings = Settings(
        data_dir=tmp_path,
        models=[{"id": "m", "engine": "upstream", "base_url": "http://127.0.0.1:9/v1"}],
        default_model="m",
    )
    db = Database(settings.resolved_database_url)
    await db.create_all()
    assets = AssetStore(db, tmp_path / "media", UrlSigner(b"k" * 32, "http://media.test", 3600))
    deps = WorkflowDeps(
        RecordStore(db, poll_interval_s=0.05), assets, FetchPolicy.from_settings(settings), {}
    )
    runtime = WorkflowRuntime(deps)
    runtime.launch()
    durable.launch(settings.resolved_database_url, tmp_path)
    yield runtime
    durable.shutdown()
    await db.close()
