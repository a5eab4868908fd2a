"""PostgreSQL notifications of appended events, so that other processes hear of them at once.

A trigger on the event log sends `record_id sequence` on one channel when an insert commits,
whatever code wrote it. Each process that follows records holds one connection listening on
that channel (see `LiveEvents`); SQLite has no such thing and keeps polling.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

CHANNEL = "sogni_record_events"

#: Installed at start-up (idempotent): a notification per inserted event, sent at commit.
TRIGGER_DDL = (
    f"""
    CREATE OR REPLACE FUNCTION sogni_notify_record_event() RETURNS trigger AS $$
    BEGIN
        PERFORM pg_notify('{CHANNEL}', NEW.record_id || ' ' || NEW.sequence);
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE OR REPLACE TRIGGER sogni_record_event_notify AFTER INSERT ON record_events
    FOR EACH ROW EXECUTE FUNCTION sogni_notify_record_event()
    """,
)

#: Called with (record id, sequence) for each event another process (or this one) appended.
Heard = Callable[[str, int], None]


async def install_trigger(conn: AsyncConnection) -> None:
    for statement in TRIGGER_DDL:
        await conn.execute(text(statement))


def parse(payload: str) -> tuple[str, int] | None:
    """`record_id sequence`, as the trigger writes it; None for anything else."""
    record_id, _, sequence = payload.rpartition(" ")
    if not record_id or not sequence.isascii() or not sequence.isdigit():
        return None
    return record_id, int(sequence)


@asynccontextmanager
async def listening(engine: AsyncEngine, heard: Heard) -> AsyncIterator[None]:
    """Hold a pooled connection that listens on the channel while the context lasts."""
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None

        def deliver(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            parsed = parse(payload)
            if parsed is not None:
                heard(*parsed)

        await raw.add_listener(CHANNEL, deliver)
        try:
            yield
        finally:
            # UNLISTEN before the connection goes back to the pool for other work.
            try:
                await raw.remove_listener(CHANNEL, deliver)
            except Exception:  # a broken connection is discarded by the pool anyway
                log.debug("could not stop listening", exc_info=True)
