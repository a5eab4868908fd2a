"""Processes that start together on one empty PostgreSQL database create its schema once,
without racing each other's DDL (PostgreSQL fails a concurrent `CREATE OR REPLACE FUNCTION`
with "tuple concurrently updated", and concurrent `CREATE TABLE` with a duplicate type)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from sogni_intelligence.store.db import Database
from tests.conftest import fresh_postgres_database

PROCESSES = 8


async def test_replicas_starting_at_once_create_the_schema_once() -> None:
    for attempt in range(3):  # the race is a matter of timing: give it a few chances
        url = fresh_postgres_database(f"sogni_schema_{attempt}")
        databases = [Database(url) for _ in range(PROCESSES)]
        try:
            await asyncio.gather(*(db.create_all() for db in databases))
            rows = await databases[0].read(
                text("SELECT count(*) FROM pg_trigger WHERE tgname = 'sogni_record_event_notify'")
            )
            assert rows[0][0] == 1
        finally:
            await asyncio.gather(*(db.close() for db in databases))
