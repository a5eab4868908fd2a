"""Durable records (workflows, chat runs), their append-only event logs, and idempotency keys.

The database is the only source of truth. Live subscribers are woken from memory when this
process appends, and poll otherwise (events written by a worker process), always reading by
cursor, so a stream never skips or repeats a sequence number.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from sogni_intelligence.errors import ServiceError
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.events import Announcement, Event, aware
from sogni_intelligence.store.live import LiveEvents, ReadDatabase
from sogni_intelligence.store.models import DurableRecord, IdempotencyKey, RecordEvent, utcnow

Status = Literal[
    "queued", "running", "waiting_for_user", "completed", "partial_failure", "failed", "cancelled"
]
TERMINAL: frozenset[str] = frozenset({"completed", "partial_failure", "failed", "cancelled"})
T = TypeVar("T")
log = logging.getLogger(__name__)
RecordKind = Literal["workflow", "chat_run"]
_PREFIX = {"workflow": "wf_", "chat_run": "run_"}
_APPEND_ATTEMPTS = 16
#: What a revision makes of a record: the patch to merge into its data and the events to add.
Change = Callable[["Record"], tuple[dict[str, Any], Sequence[Announcement]]]
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


_RECORDS = DurableRecord.__table__
_EVENTS = RecordEvent.__table__
_KEYS = IdempotencyKey.__table__


def _event(row: Any) -> Event:
    """An event from its ORM object or its plain row (the same attribute names)."""
    return Event(row.record_id, row.sequence, row.type, aware(row.at), dict(row.payload or {}))


def _record(row: Any) -> Record:
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


def _claim(owner: str, endpoint: str, key: str, body: Any, record_id: str) -> dict[str, Any]:
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
_RID = bindparam("rid")
_RECORD = select(_RECORDS).where(_RECORDS.c.id == _RID)
_IN_STATUS = select(_RECORDS).where(
    _RECORDS.c.kind == bindparam("kind"),
    _RECORDS.c.status.in_(bindparam("statuses", expanding=True)),
)
_STATUS_LOCKED = select(_RECORDS.c.status).where(_RECORDS.c.id == _RID).with_for_update()
_RECORD_LOCKED = select(_RECORDS).where(_RECORDS.c.id == _RID).with_for_update()
_BY_DEDUPE_KEY = select(_EVENTS).where(
    _EVENTS.c.record_id == _RID, _EVENTS.c.dedupe_key == bindparam("key")
)
_WRITTEN_KEYS = select(_EVENTS.c.dedupe_key).where(
    _EVENTS.c.record_id == _RID, _EVENTS.c.dedupe_key.in_(bindparam("keys", expanding=True))
)
_LAST_SEQUENCE = select(func.max(_EVENTS.c.sequence)).where(_EVENTS.c.record_id == _RID)
_UPDATE_RECORD = update(_RECORDS).where(_RECORDS.c.id == _RID)
_INSERT_EVENTS = insert(_EVENTS)


def _unwritten(
    conn: Connection, record_id: str, events: Sequence[Announcement]
) -> list[Announcement]:
    """The `events` whose dedupe keys were not written yet (a repeated step writes none)."""
    keys = [e.dedupe_key for e in events if e.dedupe_key is not None]
    if not keys:
        return list(events)
    written = set(conn.scalars(_WRITTEN_KEYS, {"rid": record_id, "keys": keys}))
    return [e for e in events if e.dedupe_key not in written]


def _numbered(
    conn: Connection, record_id: str, events: Sequence[Announcement]
) -> list[dict[str, Any]]:
    """Rows for `events`, numbered on from the record's last event."""
    if not events:
        return []
    last = conn.scalar(_LAST_SEQUENCE, {"rid": record_id})
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


def _insert(conn: Connection, rows: list[dict[str, Any]], mine: set[int]) -> list[Event]:
    """Insert event rows, noting their sequences in `mine` first (see `RecordStore._write`)."""
    if not rows:
        return []
    mine.update(row["sequence"] for row in rows)
    conn.execute(_INSERT_EVENTS, rows)
    return [
        Event(r["record_id"], r["sequence"], r["type"], aware(r["at"]), r["payload"]) for r in rows
    ]


#: Events read from the database at a time while a follower catches up.
EVENTS_PAGE = 1000


class RecordStore:
    def __init__(self, db: Database, poll_interval_s: float = 0.5) -> None:
        self._db = db
        self._live = LiveEvents(
            self._newest_sequences,
            lambda record_id, after: self.events(record_id, after, EVENTS_PAGE),
            poll_interval_s,
            db.listening,
        )
        self._watchers: list[Callable[[Event], None]] = []

    def watch(self, watcher: Callable[[Event], None]) -> None:
        """Call `watcher` with every event this process writes, once it is committed. It runs
        on the writer's path, so it must only note the event (or start a task), never wait."""
        self._watchers.append(watcher)

    def _tell_watchers(self, event: Event) -> None:
        for watcher in self._watchers:
            try:
                watcher(event)
            except Exception:  # the write is committed; a watcher's failure must not undo it
                log.exception("record watcher failed on %s", event.type)

    # -- records ---------------------------------------------------------------------------

    async def create(
        self,
        kind: RecordKind,
        owner: str,
        data: dict[str, Any],
        *,
        status: Status = "queued",
        idempotency: tuple[str, str, Any] | None = None,
        first_event: Announcement | None = None,
    ) -> tuple[Record, bool]:
        """Create a record; with `idempotency=(endpoint, key, body)` a retry of the same body
        returns the first record (and True), a different body is a 409. The key, the record
        and its `first_event` are written in one transaction, so concurrent starts make
        exactly one record."""
        record_id = _PREFIX[kind] + secrets.token_hex(12)
        now = utcnow()
        record = Record(record_id, kind, owner, status, data, aware(now), aware(now))
        first = [] if first_event is None else [first_event]

        def work(conn: Connection, mine: set[int]) -> list[Event]:
            conn.execute(
                insert(_RECORDS).values(
                    id=record_id,
                    kind=kind,
                    owner=owner,
                    status=status,
                    data=data,
                    version=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            if idempotency is not None:
                conn.execute(insert(_KEYS).values(**_claim(owner, *idempotency, record_id)))
            return _insert(conn, _numbered(conn, record_id, first), mine)

        try:
            with self._live.writing(record_id) as mine:
                for event in await self._db.write(lambda conn: work(conn, mine)):
                    self._live.publish(event)
        except IntegrityError:
            if idempotency is None:
                raise
            return await self._replay(owner, *idempotency), True
        return record, False

    async def _replay(self, owner: str, endpoint: str, key: str, body: Any) -> Record:
        record = await self.replayed(owner, endpoint, key, body)
        if record is None:  # lost a race with a failed insert; nothing to replay
            raise ServiceError("idempotent request conflict; retry", 409, "conflict_error")
        return record

    async def replayed(self, owner: str, endpoint: str, key: str, body: Any) -> Record | None:
        """The record an earlier request with this key acted on, None for a new key; 409 when
        the key came with a different body."""
        async with self._db.session() as session:
            claim = await session.get(IdempotencyKey, (owner, endpoint, key))
        if claim is None:
            return None
        if claim.body_sha256 != body_digest(body):
            raise ServiceError(
                "Idempotency-Key was already used with a different request body",
                409,
                "idempotency_error",
                "idempotency_key_reused",
            )
        record = await self.get(claim.record_id, owner)
        if record is None:
            raise ServiceError("the record of this Idempotency-Key is gone", 409, "conflict_error")
        return record

    async def remember(
        self, owner: str, endpoint: str, key: str, body: Any, record_id: str
    ) -> None:
        """Keep the key of an action done on an existing record (a confirmation, …), so that
        a retry can be answered without doing it again."""
        try:
            async with self._db.transaction() as session:
                session.add(IdempotencyKey(**_claim(owner, endpoint, key, body, record_id)))
        except IntegrityError:
            await self._replay(owner, endpoint, key, body)  # a concurrent retry: 409 if changed

    async def once(
        self,
        owner: str,
        endpoint: str,
        key: str | None,
        record_id: str,
        body: dict[str, Any],
        action: Callable[[], Awaitable[T]],
    ) -> T | None:
        """Do `action` on an existing record at most once per Idempotency-Key (a confirmation,
        …): a retry with the same key and body answers None without acting again, even once
        the record has moved on; with another body it is a 409."""
        if key is None:
            return await action()
        claim = (owner, endpoint, key, {"id": record_id, **body})
        if await self.replayed(*claim) is not None:
            return None
        done = await action()
        await self.remember(*claim, record_id)
        return done

    async def unless_cancelled(self, record_id: str, work: Awaitable[T]) -> T | None:
        """Run `work`, stopping it (and answering None) as soon as the record is cancelled;
        this is how a cancel reaches a running job. Every cancel writes an event: one made in
        this process arrives with it at once, one made by another process through the
        process's one poller (or PostgreSQL's notice), so a running job costs no reads."""
        task = asyncio.ensure_future(work)

        async def cancelled() -> bool:
            record = await self.get(record_id)
            return record is not None and record.status == "cancelled"

        async def watch() -> None:
            follower = self._live.subscribe(record_id, idle_s=None)
            try:
                while not task.done():
                    signal = await follower.queue.get()
                    if isinstance(signal, Event):
                        if signal.type.endswith("_cancelled"):
                            break
                    elif await cancelled():  # the poller could not hand the events over
                        break
                task.cancel()
            finally:
                self._live.drop(record_id, follower)

        watchdog = asyncio.create_task(watch())
        try:
            return await task
        except asyncio.CancelledError:
            if not watchdog.done():
                raise  # the caller itself is being cancelled
            return None
        finally:
            watchdog.cancel()

    async def get(self, record_id: str, owner: str | None = None) -> Record | None:
        # Plain rows, not ORM objects: the hot reads of every durable step skip the session's
        # identity map and object loading.
        rows = await self._db.read(_RECORD, {"rid": record_id})
        row = rows[0] if rows else None
        if row is None or (owner is not None and row.owner != owner):
            return None
        return _record(row)

    async def list(
        self,
        kind: RecordKind,
        owner: str | None,
        offset: int,
        limit: int,
        statuses: Sequence[Status] | None = None,
    ) -> tuple[list[Record], int | None]:
        """Newest first, of one owner (None: of everyone), optionally only in `statuses`;
        `next` is the offset of the following page, or None."""
        query = select(DurableRecord).where(DurableRecord.kind == kind)
        if owner is not None:
            query = query.where(DurableRecord.owner == owner)
        if statuses:
            query = query.where(DurableRecord.status.in_(list(statuses)))
        query = query.order_by(DurableRecord.created_at.desc(), DurableRecord.id)
        async with self._db.session() as session:
            rows = (await session.scalars(query.offset(offset).limit(limit + 1))).all()
        page = [_record(row) for row in rows[:limit]]
        return page, (offset + limit if len(rows) > limit else None)

    async def unlaunched(self, kind: RecordKind) -> list[Record]:
        """Records still `queued`: candidates for a launch that a crash may have prevented."""
        return await self.in_status(kind, ("queued",))

    async def in_status(self, kind: RecordKind, statuses: Iterable[Status]) -> list[Record]:
        rows = await self._db.read(_IN_STATUS, {"kind": kind, "statuses": list(statuses)})
        return [_record(row) for row in rows]

    async def transition(
        self,
        record_id: str,
        to_status: Status,
        *,
        allowed_from: Iterable[str],
        patch: dict[str, Any] | None = None,
        event: Announcement | None = None,
    ) -> Record | None:
        """Move to `to_status` only from one of `allowed_from` (compare-and-set), merging
        `patch` into the data. None when the record was in another state: a late step result
        can never overwrite a cancel. `event` is appended in the same transaction, so a crash
        never leaves the status without the event that tells followers."""
        events = [event] if event else []
        allowed = frozenset(allowed_from)
        return await self._update(record_id, lambda _: (patch or {}, events), to_status, allowed)

    async def patch(
        self, record_id: str, patch: dict[str, Any], events: Sequence[Announcement] = ()
    ) -> Record | None:
        """Merge `patch` into the data without a status change, appending `events` in the same
        transaction (one commit for a whole step's news; dedupe keys already written are
        skipped, and a record that has ended takes the patch but no events)."""
        return await self._update(record_id, lambda _: (patch, events), None, None)

    async def revise(self, record_id: str, change: Change) -> Record | None:
        """Like `patch`, with the patch and events made by `change` from the record as it is
        inside the transaction: a read-modify-write that no other writer can interleave.
        `change` runs in a worker thread, so it only computes."""
        return await self._update(record_id, change, None, None)

    async def _update(
        self,
        record_id: str,
        change: Change,
        to_status: str | None,
        allowed_from: frozenset[str] | None,
    ) -> Record | None:
        def work(conn: Connection, mine: set[int]) -> tuple[Record | None, list[Event]]:
            row = conn.execute(_RECORD_LOCKED, {"rid": record_id}).first()
            if row is None:
                return None, []
            current = _record(row)
            if allowed_from is not None and current.status not in allowed_from:
                return None, []
            patch, events = change(current)
            now = utcnow()
            changed = Record(
                current.id,
                current.kind,
                current.owner,
                to_status or current.status,
                {**current.data, **patch},
                current.created_at,
                aware(now),
                current.version + 1,
            )
            conn.execute(
                _UPDATE_RECORD,
                {
                    "rid": record_id,
                    "status": changed.status,
                    "data": changed.data,
                    "version": changed.version,
                    "updated_at": now,
                },
            )
            # An ended record takes no more events: its terminal event stays last.
            if current.status in TERMINAL:
                return changed, []
            rows = _numbered(conn, record_id, _unwritten(conn, record_id, events))
            return changed, _insert(conn, rows, mine)

        return await self._write(record_id, work)

    async def append(
        self,
        record_id: str,
        type: str,
        payload: dict[str, Any],
        *,
        dedupe_key: str | None = None,
    ) -> Event | None:
        """Append the next event. With `dedupe_key`, a second append (a step repeated after a
        crash) returns the first event instead of writing another. Published only after the
        commit, so what a subscriber sees is always already persisted. A record that has ended
        takes no more events (None): its terminal event stays the last one, even when a step
        that was running at a cancel reports afterwards."""
        announcement = Announcement(type, payload, dedupe_key)

        def work(conn: Connection, mine: set[int]) -> tuple[Event | None, list[Event]]:
            status = conn.scalar(_STATUS_LOCKED, {"rid": record_id})
            if dedupe_key is not None:
                existing = conn.execute(_BY_DEDUPE_KEY, {"rid": record_id, "key": dedupe_key})
                row = existing.first()
                if row is not None:
                    return _event(row), []
            if status is None or status in TERMINAL:
                return None, []
            # Its dedupe key was looked up above.
            written = _insert(conn, _numbered(conn, record_id, [announcement]), mine)
            return written[0], written

        return await self._write(record_id, work)

    async def _write(
        self, record_id: str, work: Callable[[Connection, set[int]], tuple[T, list[Event]]]
    ) -> T:
        """Run `work` (which locks the record's row first, so that the writers of one record
        take turns) in one transaction, then hand the events it wrote to this process's
        followers. `work` notes the sequences it is about to commit in the set it is given,
        so that the database's notice of them is not taken for another process's news."""
        for attempt in range(_APPEND_ATTEMPTS):
            try:
                with self._live.writing(record_id) as mine:
                    result, written = await self._db.write(lambda conn: work(conn, mine))
                    for event in written:
                        self._live.publish(event)
                        self._tell_watchers(event)
                return result
            except (IntegrityError, OperationalError):
                # Another process took the sequence first, or held SQLite's write lock past
                # the busy timeout: nothing was written; back off and try again.
                await asyncio.sleep(0.001 * secrets.randbelow(2 ** min(attempt + 2, 8)))
        raise ServiceError("could not write to the record: too much contention", 503)

    # -- events ------------------------------------------------------------------------------

    async def events(
        self, record_id: str, after: int = BEFORE_FIRST, limit: int = 1000
    ) -> list[Event]:
        """Events with `sequence > after` (cursors are exclusive), oldest first."""
        rows = await self._db.read(
            select(_EVENTS)
            .where(_EVENTS.c.record_id == record_id, _EVENTS.c.sequence > after)
            .order_by(_EVENTS.c.sequence)
            .limit(limit)
        )
        return [_event(row) for row in rows]

    async def all_events(self, record_id: str) -> list[Event]:
        """Every event of the record, oldest first, read a page at a time."""
        events: list[Event] = []
        while page := await self.events(record_id, events[-1].sequence if events else BEFORE_FIRST):
            events += page
        return events

    async def _newest_sequences(self, record_ids: list[str]) -> dict[str, int]:
        """The newest sequence of each record that has events, in one query per page."""
        newest: dict[str, int] = {}
        for start in range(0, len(record_ids), EVENTS_PAGE):
            page = record_ids[start : start + EVENTS_PAGE]
            rows = await self._db.read(
                select(_EVENTS.c.record_id, func.max(_EVENTS.c.sequence))
                .where(_EVENTS.c.record_id.in_(page))
                .group_by(_EVENTS.c.record_id)
            )
            newest.update({record_id: sequence for record_id, sequence in rows})
        return newest

    async def follow(
        self, record_id: str, after: int = BEFORE_FIRST, idle_s: float | None = None
    ) -> AsyncIterator[Event | None]:
        """Replay from `after`, then yield new events as they are appended, forever; the
        caller decides when to stop (e.g. at a terminal event). With `idle_s`, a None is
        yielded after that long without events (for heartbeats)."""
        follower = self._live.subscribe(record_id, idle_s)
        follower.position = after
        must_read = True  # subscribed first, so nothing committed after this read is missed
        try:
            while True:
                if must_read:
                    batch = await self.events(record_id, after, EVENTS_PAGE)
                    for event in batch:
                        after = follower.position = event.sequence
                        yield event
                    if len(batch) == EVENTS_PAGE:
                        continue
                    must_read = False
                # Caught up: take events handed over in memory while they follow on without a
                # gap; a gap sends us back to the database, and so does the poller when
                # another process wrote.
                signal = await follower.queue.get()
                if isinstance(signal, Event):
                    if signal.sequence == after + 1:
                        after = follower.position = signal.sequence
                        yield signal
                    elif signal.sequence > after:
                        must_read = True
                elif isinstance(signal, ReadDatabase):
                    must_read = signal.newest > after
                else:
                    yield None
        finally:
            self._live.drop(record_id, follower)
