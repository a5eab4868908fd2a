"""Durable records (workflows, chat runs), their append-only event logs, and idempotency keys.

The database is the only source of truth. Live subscribers are woken from memory when this
process appends, and poll otherwise (events written by a worker process), always reading by
cursor, so a stream never skips or repeats a sequence number.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

from sogni_intelligence.errors import ServiceError
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.events import Announcement, Event, aware
from sogni_intelligence.store.live import LiveEvents, ReadDatabase
from sogni_intelligence.store.models import DurableRecord, IdempotencyKey, utcnow
from sogni_intelligence.store.record_rows import (
    BEFORE_FIRST,
    BY_DEDUPE_KEY,
    COUNTS,
    EVENTS,
    IN_STATUS,
    KEYS,
    RECORD,
    RECORD_LOCKED,
    RECORDS,
    STATUS_LOCKED,
    UPDATE_RECORD,
    Record,
    body_digest,
    claim,
    event_of,
    insert_events,
    numbered,
    record_of,
    unwritten,
)

Status = Literal[
    "queued", "running", "waiting_for_user", "completed", "partial_failure", "failed", "cancelled"
]
TERMINAL: frozenset[str] = frozenset({"completed", "partial_failure", "failed", "cancelled"})
T = TypeVar("T")
RecordKind = Literal["workflow", "chat_run"]
_PREFIX = {"workflow": "wf_", "chat_run": "run_"}
_APPEND_ATTEMPTS = 16
#: What a revision makes of a record: the patch to merge into its data and the events to add.
Change = Callable[["Record"], tuple[dict[str, Any], Sequence[Announcement]]]


log = logging.getLogger(__name__)


def _log_status(record: Record, reason: object = None) -> None:
    """One line per status a record takes, written after the commit that gave it."""
    log.info(
        "%s %s is %s",
        record.kind,
        record.id,
        record.status,
        extra={
            "record_id": record.id,
            "kind": record.kind,
            "status": record.status,
            "reason": reason if isinstance(reason, str) and reason else None,
        },
    )


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
                insert(RECORDS).values(
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
                conn.execute(insert(KEYS).values(**claim(owner, *idempotency, record_id)))
            return insert_events(conn, numbered(conn, record_id, first), mine)

        try:
            with self._live.writing(record_id) as mine:
                for event in await self._db.write(lambda conn: work(conn, mine)):
                    self._live.publish(event)
        except IntegrityError:
            if idempotency is None:
                raise
            return await self._replay(owner, *idempotency), True
        _log_status(record)
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
                session.add(IdempotencyKey(**claim(owner, endpoint, key, body, record_id)))
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
        rows = await self._db.read(RECORD, {"rid": record_id})
        row = rows[0] if rows else None
        if row is None or (owner is not None and row.owner != owner):
            return None
        return record_of(row)

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
        page = [record_of(row) for row in rows[:limit]]
        return page, (offset + limit if len(rows) > limit else None)

    async def counts(self) -> dict[tuple[str, str], int]:
        """How many records there are of each (kind, status), in one grouped query."""
        rows = await self._db.read(COUNTS)
        return {(kind, status): int(count) for kind, status, count in rows}

    async def unlaunched(self, kind: RecordKind) -> list[Record]:
        """Records still `queued`: candidates for a launch that a crash may have prevented."""
        return await self.in_status(kind, ("queued",))

    async def in_status(self, kind: RecordKind, statuses: Iterable[Status]) -> list[Record]:
        rows = await self._db.read(IN_STATUS, {"kind": kind, "statuses": list(statuses)})
        return [record_of(row) for row in rows]

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
        moved = await self._update(record_id, lambda _: (patch or {}, events), to_status, allowed)
        if moved is not None:
            _log_status(moved, event.payload.get("reason") if event else None)
        return moved

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
            row = conn.execute(RECORD_LOCKED, {"rid": record_id}).first()
            if row is None:
                return None, []
            current = record_of(row)
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
                UPDATE_RECORD,
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
            rows = numbered(conn, record_id, unwritten(conn, record_id, events))
            return changed, insert_events(conn, rows, mine)

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
            status = conn.scalar(STATUS_LOCKED, {"rid": record_id})
            if dedupe_key is not None:
                existing = conn.execute(BY_DEDUPE_KEY, {"rid": record_id, "key": dedupe_key})
                row = existing.first()
                if row is not None:
                    return event_of(row), []
            if status is None or status in TERMINAL:
                return None, []
            # Its dedupe key was looked up above.
            written = insert_events(conn, numbered(conn, record_id, [announcement]), mine)
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
            select(EVENTS)
            .where(EVENTS.c.record_id == record_id, EVENTS.c.sequence > after)
            .order_by(EVENTS.c.sequence)
            .limit(limit)
        )
        return [event_of(row) for row in rows]

    async def all_events(self, record_id: str, after: int = BEFORE_FIRST) -> list[Event]:
        """Every event after the cursor, oldest first, read a page at a time."""
        events: list[Event] = []
        while page := await self.events(record_id, events[-1].sequence if events else after):
            events += page
        return events

    async def latest_events(
        self,
        record_id: str,
        limit: int,
        before: int | None = None,
        types: Iterable[str] | None = None,
    ) -> list[Event]:
        """The newest `limit` events (of `types`, before sequence `before`), newest first: a
        record's tail without reading its whole history."""
        query = select(EVENTS).where(EVENTS.c.record_id == record_id)
        if before is not None:
            query = query.where(EVENTS.c.sequence < before)
        if types is not None:
            query = query.where(EVENTS.c.type.in_(list(types)))
        rows = await self._db.read(query.order_by(EVENTS.c.sequence.desc()).limit(limit))
        return [event_of(row) for row in rows]

    async def _newest_sequences(self, record_ids: list[str]) -> dict[str, int]:
        """The newest sequence of each record that has events, in one query per page."""
        newest: dict[str, int] = {}
        for start in range(0, len(record_ids), EVENTS_PAGE):
            page = record_ids[start : start + EVENTS_PAGE]
            rows = await self._db.read(
                select(EVENTS.c.record_id, func.max(EVENTS.c.sequence))
                .where(EVENTS.c.record_id.in_(page))
                .group_by(EVENTS.c.record_id)
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
