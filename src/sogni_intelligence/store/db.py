"""Async engine and session factory for one database URL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

from sqlalchemy import Executable, Row, create_engine, event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from sogni_intelligence.store.models import Base
from sogni_intelligence.store.notify import Heard, install_trigger, listening


def async_url(url: str) -> str:
    """Accept the plain URLs people write and pick the async driver for them."""
    for plain, driver in (
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


class Database:
    def __init__(self, url: str) -> None:
        self.url = async_url(url)
        sqlite = self.url.startswith("sqlite")
        self.engine: AsyncEngine = create_async_engine(self.url, **_pool_options(self.url))
        if sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite answers a read in microseconds, but through aiosqlite each step of it (check
        # out, execute, fetch, roll back) is a trip to the connection's thread and back; a
        # plain engine run in one worker-thread call makes the whole read a single trip.
        on_file = sqlite and ":memory:" not in self.url and not self.url.endswith("://")
        self._sqlite_reader = (
            create_engine(sync_url(self.url), **_pool_options(self.url)) if on_file else None
        )
        if self._sqlite_reader is not None:
            event.listen(self._sqlite_reader, "connect", _sqlite_pragmas)
        # SQLite lets one transaction write at a time and makes the others sleep and retry in
        # its busy handler (in steps of up to 100 ms); queueing this process's writers here
        # instead hands the lock over the moment it is free.
        self._writer = asyncio.Lock() if sqlite else None

    async def create_all(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
            if not self.url.startswith("sqlite"):
                await install_trigger(conn)

    def listening(self, heard: Heard) -> AbstractAsyncContextManager[None] | None:
        """Hear of every appended event while the context lasts (PostgreSQL); None where the
        database cannot tell (SQLite), so the caller polls."""
        if self.url.startswith("sqlite"):
            return None
        return listening(self.engine, heard)

    async def read(self, statement: Executable) -> list[Row[Any]]:
        """The rows of one read-only Core statement, by the cheapest way there is here."""
        if self._sqlite_reader is None:
            async with self.engine.connect() as conn:
                return list((await conn.execute(statement)).all())
        return await asyncio.to_thread(self._read_sqlite, statement)

    def _read_sqlite(self, statement: Executable) -> list[Row[Any]]:
        assert self._sqlite_reader is not None
        with self._sqlite_reader.connect() as conn:
            return list(conn.execute(statement).all())

    def session(self) -> AsyncSession:
        return self.sessions()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction that commits on leaving (rolls back on an error)."""
        async with self._writer or nullcontext(), self.sessions() as session, session.begin():
            yield session

    async def close(self) -> None:
        await self.engine.dispose()
        if self._sqlite_reader is not None:
            self._sqlite_reader.dispose()


def sync_url(url: str) -> str:
    """The blocking driver's URL for an async one (SQLite's standard module)."""
    return url.replace("sqlite+aiosqlite://", "sqlite://", 1)


def _pool_options(url: str) -> dict[str, Any]:
    """Pooled connections are kept rather than reopened: an overflow connection is closed
    after use, and opening one (a thread per aiosqlite connection, or a PostgreSQL login)
    costs more than the queries of a durable step. A local file needs no liveness ping."""
    if not url.startswith("sqlite"):
        return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20}
    if ":memory:" in url or url.endswith("://"):
        return {}  # one shared connection
    return {"pool_size": 32, "max_overflow": 32}


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the CLI and the server use the same file at once.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
