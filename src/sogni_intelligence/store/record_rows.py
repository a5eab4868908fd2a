"""The rows behind durable records: the record value, the prebuilt statements of the hot
reads and writes, and the blocking pieces a write runs inside its transaction (which events
are new, their numbers, their insertion)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from sogni_intelligence.store.events import Announcement, Event, aware
from sogni_intelligence.store.models import DurableRecord, IdempotencyKey, RecordEvent, utcnow

#: The cursor before a log's first event (sequences start at 0; cursors are exclusive).
BEFORE_FIRST = -1


@dataclass(frozen=True)
class Record:
    id: str
    kind: str
    owner: str
    status: str
    data: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    version: int = 0


RECORDS = DurableRecord.__table__
EVENTS = RecordEvent.__table__
KEYS = IdempotencyKey.__table__


def event_of(row: Any) -> Event:
    """An event from its ORM object or its plain row (the same attribute names)."""
    return Event(row.record_id, row.sequence, row.type, aware(row.at), dict(row.payload or {}))


def record_of(row: Any) -> Record:
    """A record from its ORM object or its plain row (the same attribute names)."""
    return Record(
        row.id,
        row.kind,
        row.owner,
        row.status,
        dict(row.data or {}),
        aware(row.created_at),
        aware(row.updated_at),
        row.version or 0,
    )


def body_digest(body: Any) -> str:
    """A stable digest of a request body, for comparing idempotent retries."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def claim(owner: str, endpoint: str, key: str, body: Any, record_id: str) -> dict[str, Any]:
    """The idempotency-key row of an action on `record_id`."""
    return {
        "owner": owner,
        "endpoint": endpoint,
        "key": key,
        "body_sha256": body_digest(body),
        "record_id": record_id,
        "created_at": utcnow(),
    }


# The statements of the hot write path, built once (building one costs more than SQLite
# takes to run it); `rid` is the record's id.
RID = bindparam("rid")
RECORD = select(RECORDS).where(RECORDS.c.id == RID)
IN_STATUS = select(RECORDS).where(
    RECORDS.c.kind == bindparam("kind"),
    RECORDS.c.status.in_(bindparam("statuses", expanding=True)),
)
STATUS_LOCKED = select(RECORDS.c.status).where(RECORDS.c.id == RID).with_for_update()
RECORD_LOCKED = select(RECORDS).where(RECORDS.c.id == RID).with_for_update()
BY_DEDUPE_KEY = select(EVENTS).where(
    EVENTS.c.record_id == RID, EVENTS.c.dedupe_key == bindparam("key")
)
WRITTEN_KEYS = select(EVENTS.c.dedupe_key).where(
    EVENTS.c.record_id == RID, EVENTS.c.dedupe_key.in_(bindparam("keys", expanding=True))
)
LAST_SEQUENCE = select(func.max(EVENTS.c.sequence)).where(EVENTS.c.record_id == RID)
UPDATE_RECORD = update(RECORDS).where(RECORDS.c.id == RID)
INSERT_EVENTS = insert(EVENTS)
COUNTS = select(RECORDS.c.kind, RECORDS.c.status, func.count()).group_by(
    RECORDS.c.kind, RECORDS.c.status
)


def unwritten(
    conn: Connection, record_id: str, events: Sequence[Announcement]
) -> list[Announcement]:
    """The `events` whose dedupe keys were not written yet (a repeated step writes none)."""
    keys = [e.dedupe_key for e in events if e.dedupe_key is not None]
    if not keys:
        return list(events)
    written = set(conn.scalars(WRITTEN_KEYS, {"rid": record_id, "keys": keys}))
    return [e for e in events if e.dedupe_key not in written]


def numbered(
    conn: Connection, record_id: str, events: Sequence[Announcement]
) -> list[dict[str, Any]]:
    """Rows for `events`, numbered on from the record's last event."""
    if not events:
        return []
    last = conn.scalar(LAST_SEQUENCE, {"rid": record_id})
    first = BEFORE_FIRST + 1 if last is None else last + 1
    at = utcnow()
    return [
        {
            "record_id": record_id,
            "sequence": sequence,
            "type": event.type,
            "at": at,
            "payload": event.payload,
            "dedupe_key": event.dedupe_key,
        }
        for sequence, event in enumerate(events, first)
    ]


def insert_events(conn: Connection, rows: list[dict[str, Any]], mine: set[int]) -> list[Event]:
    """Insert event rows, noting their sequences in `mine` first (see `RecordStore._write`)."""
    if not rows:
        return []
    mine.update(row["sequence"] for row in rows)
    conn.execute(INSERT_EVENTS, rows)
    return [
        Event(r["record_id"], r["sequence"], r["type"], aware(r["at"]), r["payload"]) for r in rows
    ]
