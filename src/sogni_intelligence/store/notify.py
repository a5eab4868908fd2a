"""PostgreSQL notifications of appended events, so that other processes hear of them at once.

A trigger on the event log sends each inserted event on one channel when its insert commits,
whatever code wrote it: the whole event as JSON when it fits in a notification, else only its
record id and sequence (the listener then reads it). Each process that follows records holds
one connection listening on that channel (see `LiveEvents`); SQLite has no such thing and keeps
polling.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sogni_intelligence.store.events import Event

log = logging.getLogger(__name__)

CHANNEL = "sogni_record_events"
#: PostgreSQL refuses a notification payload of 8000 bytes or more; larger events are named.
WHOLE_EVENT_BYTES = 7900

#: Installed at start-up (idempotent): a notification per inserted event, sent at commit.
TRIGGER_DDL = (
    f"""
    CREATE OR REPLACE FUNCTION sogni_notify_record_event() RETURNS trigger AS $$
    DECLARE
        body text := json_build_object(
            'record_id', NEW.record_id, 'sequence', NEW.sequence, 'type', NEW.type,
            'at', NEW.at, 'payload', NEW.payload
        )::text;
    BEGIN
        IF octet_length(body) > {WHOLE_EVENT_BYTES} THEN
            body := json_build_object('record_id', NEW.record_id, 'sequence', NEW.sequence)::text;
        END IF;
        PERFORM pg_notify('{CHANNEL}', body);
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE OR REPLACE TRIGGER sogni_record_event_notify AFTER INSERT ON record_events
    FOR EACH ROW EXECUTE FUNCTION sogni_notify_record_event()
    """,
)

#: Called with (record id, sequence, the event when the notice carried it) for each event
#: another process (or this one) appended.
Heard = Callable[[str, int, Event | None], None]


async def install_trigger(conn: AsyncConnection) -> None:
    for statement in TRIGGER_DDL:
        await conn.execute(text(statement))


def parse(payload: str) -> tuple[str, int, Event | None] | None:
    """What a notice tells: the record id, the sequence and, when it fits, the event; None
    for a payload this version cannot read. Processes of an earlier version sent
    `record_id sequence`."""
    if not payload.startswith("{"):
        record_id, _, sequence = payload.rpartition(" ")
        if not record_id or not sequence.isascii() or not sequence.isdigit():
            return None
        return record_id, int(sequence), None
    try:
        body = json.loads(payload)
        record_id, sequence = str(body["record_id"]), int(body["sequence"])
        if "type" not in body:
            return record_id, sequence, None
        at = datetime.fromisoformat(body["at"])
        return record_id, sequence, Event(record_id, sequence, body["type"], at, body["payload"])
    except (ValueError, KeyError, TypeError):
        return None


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
