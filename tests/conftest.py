"""Shared fixtures: database URLs to run store tests on, small settings builders, and the whole
app in process."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from sogni_intelligence.api.app import create_app
from sogni_intelligence.config import PUBLIC_MODEL_IDS, ModelConfig, Settings
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.keys import KeyStore, Role

POSTGRES_URL = os.environ.get("SOGNI_TEST_POSTGRES_URL")


def fresh_postgres_database(prefix: str) -> str:
    """The URL of a new, empty database on the test server (skips the test without one).

    Databases are left in place: the test server is thrown away after the run, and dropping
    one under a DBOS thread that is still recording a step makes that thread retry forever,
    which keeps the interpreter from exiting."""
    if not POSTGRES_URL:
        pytest.skip("SOGNI_TEST_POSTGRES_URL is not set (make test starts a server)")
    name = f"{prefix}_{secrets.token_hex(6)}"
    server = make_url(POSTGRES_URL)
    admin = create_engine(server.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return server.set(database=name).render_as_string(hide_password=False)


def embedded_settings(data_dir: Path, **model: object) -> Settings:
    """Settings with the real default model, made small enough for tests."""
    config = ModelConfig(
        id="smollm2-135m-instruct",
        aliases=list(PUBLIC_MODEL_IDS),
        **{"n_parallel": 2, "n_ctx": 4096, **model},  # type: ignore[arg-type]
    )
    return Settings(data_dir=data_dir, models=[config], key_cache_seconds=0)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on a SQLite file and on PostgreSQL (SOGNI_TEST_POSTGRES_URL)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite'}"
    if not POSTGRES_URL:
        pytest.skip("SOGNI_TEST_POSTGRES_URL is not set (make test starts a server)")
    return POSTGRES_URL


@dataclass
class InProcessApp:
    app: FastAPI
    http: httpx.AsyncClient
    key: str
    owner: str


@asynccontextmanager
async def in_process_app(
    settings: Settings, timeout_s: float = 60, role: Role = "user"
) -> AsyncIterator[InProcessApp]:
    """The whole app with its lifespan, an HTTP client over ASGI, and an API key of `role` (its
    owner id is what records are stored under)."""
    settings.ensure_data_dir()
    db = Database(settings.resolved_database_url)
    await db.create_all()
    key, info = await KeyStore(db).create("tests", role)
    await db.close()
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test", timeout=timeout_s
        ) as http,
    ):
        yield InProcessApp(app, http, key, info.id)
