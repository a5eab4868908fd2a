"""Async engine and session factory for one database URL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Executable, Row, create_engine, event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from sogni_intelligence.store.models import Base
from sogni_intelligence.store.notify import Heard, install_trigger, listening

T = TypeVar("T")

#: The PostgreSQL advisory lock under which a process creates or updates the schema.
SCHEMA_LOCK = int.from_bytes(b"sogni-db", "big") >> 1


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
        self._sqlite_reader: Engine | None = None
        # Writes likewise, on their own engine whose transactions take SQLite's write lock at
        # BEGIN: a transaction that reads and then writes cannot find, at its first write, that
        # another process wrote since its read (SQLite would fail it at once).
        self._sqlite_writer: Engine | None = None
        if on_file:
            self._sqlite_reader = create_engine(sync_url(self.url), **_pool_options(self.url))
            self._sqlite_writer = create_engine(sync_url(self.url), pool_size=1, max_overflow=1)
            event.listen(self._sqlite_reader, "connect", _sqlite_pragmas)
            event.listen(self._sqlite_writer, "connect", _sqlite_pragmas)
            event.listen(self._sqlite_writer, "connect", _manual_transactions)
            event.listen(self._sqlite_writer, "begin", _begin_immediate)
        # SQLite lets one transaction write at a time and makes the others sleep and retry in
        # its busy handler (in steps of up to 100 ms); queueing this process's writers here
        # instead hands the lock over the moment it is free.
        self._writer = asyncio.Lock() if sqlite else None

    async def create_all(self) -> None:
        async with self.engine.begin() as conn:
            if self.url.startswith("sqlite"):
                await conn.run_sync(Base.metadata.create_all)
                return
            # Replicas starting together would race on the same DDL (a duplicate type from
            # CREATE TABLE, "tuple concurrently updated" from CREATE OR REPLACE): one at a
            # time, each finding what the one before it made.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
            await conn.run_sync(Base.metadata.create_all)
            await install_trigger(conn)

    def listening(self, heard: Heard) -> AbstractAsyncContextManager[None] | None:
        """Hear of every appended event while the context lasts (PostgreSQL); None where the
        database cannot tell (SQLite), so the caller polls."""
        if self.url.startswith("sqlite"):
            return None
        return listening(self.engine, heard)

    async def read(
        self, statement: Executable, params: dict[str, Any] | None = None
    ) -> list[Row[Any]]:
        """The rows of one read-only Core statement, by the cheapest way there is here."""
        if self._sqlite_reader is None:
            async with self.engine.connect() as conn:
                return list((await conn.execute(statement, params)).all())
        return await asyncio.to_thread(self._read_sqlite, statement, params)

    def _read_sqlite(self, statement: Executable, params: dict[str, Any] | None) -> list[Row[Any]]:
        assert self._sqlite_reader is not None
        with self._sqlite_reader.connect() as conn:
            return list(conn.execute(statement, params).all())

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one transaction that commits when it returns (rolls back if it
        raises). `work` is plain blocking code on a Core connection, so a whole durable write
        (look, compare, insert, update) is one trip: on a SQLite file, one worker-thread call
        under this process's writer lock; elsewhere the async driver serves it in place."""
        if self._sqlite_writer is not None:
            async with self._writer or nullcontext():
                return await asyncio.to_thread(self._write_sqlite, work)
        async with self._writer or nullcontext(), self.engine.begin() as conn:
            return await conn.run_sync(work)

    def _write_sqlite(self, work: Callable[[Connection], T]) -> T:
        assert self._sqlite_writer is not None
        with self._sqlite_writer.begin() as conn:
            return work(conn)

    def session(self) -> AsyncSession:
        return self.sessions()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction that commits on leaving (rolls back on an error)."""
        async with self._writer or nullcontext(), self.sessions() as session, session.begin():
            yield session

    async def close(self) -> None:
        await self.engine.dispose()
        for engine in (self._sqlite_reader, self._sqlite_writer):
            if engine is not None:
                engine.dispose()


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


def _manual_transactions(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # The standard module would open transactions itself (deferred ones); `_begin_immediate`
    # opens them instead.
    dbapi_conn.isolation_level = None


def _begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the CLI and the server use the same file at once.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
