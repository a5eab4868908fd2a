"""Live delivery of appended events to the followers of records in this process.

An append hands its event to every follower in memory (one queue put each, no timer), so a
follower costs nothing while its record is quiet. Events that another process wrote reach
nobody that way: PostgreSQL sends a notice of each (see `notify`), and one poller per process
asks the database for the newest sequence of every followed record at once, each interval;
the followers of a record that moved past what was handed over are told to read the
database. The same poller wakes quiet followers that asked for heartbeats. The queue is only
a fast path: a follower checks sequence continuity and reads the database on any gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from sogni_intelligence.store.events import Event
from sogni_intelligence.store.notify import Heard

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReadDatabase:
    """The database holds events up to `newest` that were not handed over in memory."""

    newest: int


class Quiet:
    """Nothing happened on the record for the follower's `idle_s`."""


QUIET = Quiet()
Signal = Event | ReadDatabase | Quiet


class Follower:
    """One follower's mailbox: events and signals in the order they happened."""

    __slots__ = ("idle_s", "last_woken", "position", "queue")

    def __init__(self, idle_s: float | None, now: float) -> None:
        self.queue: asyncio.Queue[Signal] = asyncio.Queue()
        self.idle_s = idle_s
        self.last_woken = now
        #: The sequence of the last event the follower has taken.
        self.position = -1


class _Followed:
    """The followers of one record and the newest sequence handed over to them."""

    __slots__ = ("behind", "followers", "handed_over", "last_event_at", "reading")

    def __init__(self, now: float) -> None:
        self.followers: set[Follower] = set()
        self.handed_over = -1
        self.last_event_at = now
        #: The newest sequence another process is known to have written, and the one read
        #: that fetches it for every follower.
        self.behind = -1
        self.reading: asyncio.Task[None] | None = None


NewestSequences = Callable[[list[str]], Awaitable[dict[str, int]]]
#: A record's events after a sequence, oldest first (one page).
ReadAfter = Callable[[str, int], Awaitable[list[Event]]]
#: Opens a subscription to the database's notices of appended events, when it has them.
Listen = Callable[[Heard], AbstractAsyncContextManager[None] | None]


class LiveEvents:
    """In-process fan-out of events, with one database poll per interval for all records."""

    def __init__(
        self,
        newest: NewestSequences,
        read_after: ReadAfter,
        poll_interval_s: float,
        listen: Listen | None = None,
    ) -> None:
        self._newest = newest
        self._read_after = read_after
        self._listen = listen
        self.poll_interval_s = poll_interval_s
        self._records: dict[str, _Followed] = {}
        self._poller: asyncio.Task[None] | None = None
        self._writing: dict[str, list[set[int]]] = {}

    def publish(self, event: Event) -> None:
        followed = self._records.get(event.record_id)
        if followed is None:
            return
        followed.handed_over = max(followed.handed_over, event.sequence)
        followed.last_event_at = asyncio.get_running_loop().time()
        for follower in followed.followers:
            follower.queue.put_nowait(event)

    @contextlib.contextmanager
    def writing(self, record_id: str) -> Iterator[set[int]]:
        """Mark events this process is committing: the writer adds their sequences to the set
        it is given before the commit (from any thread), and a notice or a look that sees
        one before its `publish` right after the commit is no news, and sends nobody to the
        database."""
        mine: set[int] = set()
        self._writing.setdefault(record_id, []).append(mine)
        try:
            yield mine
        finally:
            held = self._writing.get(record_id)
            if held is not None:
                # By identity: another writer's set may hold the same sequences.
                held[:] = [other for other in held if other is not mine]
                if not held:
                    del self._writing[record_id]

    def subscribe(self, record_id: str, idle_s: float | None) -> Follower:
        now = asyncio.get_running_loop().time()
        followed = self._records.get(record_id)
        if followed is None:
            followed = self._records[record_id] = _Followed(now)
        follower = Follower(idle_s, now)
        followed.followers.add(follower)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name="record-events-poller")
        return follower

    def drop(self, record_id: str, follower: Follower) -> None:
        followed = self._records.get(record_id)
        if followed is None:
            return
        followed.followers.discard(follower)
        if not followed.followers:
            del self._records[record_id]
            if followed.reading is not None:
                followed.reading.cancel()
        if not self._records and self._poller is not None:
            self._poller.cancel()
            self._poller = None

    async def _poll(self) -> None:
        """While anything is followed: hear of other processes' events from the database's
        notices where it sends them (at once), and look for them every interval anyway (all
        they would be on SQLite, a safety net elsewhere)."""
        async with contextlib.AsyncExitStack() as stack:
            listening = self._listen(self._heard) if self._listen is not None else None
            if listening is not None:
                try:
                    await stack.enter_async_context(listening)
                except Exception:
                    log.warning("cannot listen for events; polling only", exc_info=True)
            while self._records:
                await asyncio.sleep(self.poll_interval_s)
                ids = list(self._records)
                with contextlib.suppress(Exception):  # a failed look is retried next interval
                    newest = await self._newest(ids)
                    self._tell_behind(newest, asyncio.get_running_loop().time())
                self._wake_quiet(asyncio.get_running_loop().time())

    def _heard(self, record_id: str, sequence: int, event: Event | None) -> None:
        """A notice of an appended event: handed over at once when it carries the event that
        comes next for every follower, else the followers are sent to the database."""
        followed = self._records.get(record_id)
        if followed is None or any(sequence in mine for mine in self._writing.get(record_id, ())):
            return
        if event is not None and followed.followers:
            behind = min(f.position for f in followed.followers)
            if sequence == max(followed.handed_over, behind) + 1:
                self.publish(event)
                return
        self._tell_behind({record_id: sequence}, asyncio.get_running_loop().time())

    def _tell_behind(self, newest: dict[str, int], now: float) -> None:
        for record_id, sequence in newest.items():
            followed = self._records.get(record_id)
            if any(sequence in mine for mine in self._writing.get(record_id, ())):
                continue
            if followed is None or sequence <= max(followed.handed_over, followed.behind):
                continue
            followed.behind = sequence
            followed.last_event_at = now
            if followed.reading is None or followed.reading.done():
                followed.reading = asyncio.create_task(self._catch_up(record_id, followed))

    async def _catch_up(self, record_id: str, followed: _Followed) -> None:
        """Read what another process wrote once for all the record's followers (from the
        least advanced one), and hand it over as if it was appended here; if the read fails,
        each follower reads for itself."""
        start = min((f.position for f in followed.followers), default=followed.behind)
        while start < followed.behind and self._records.get(record_id) is followed:
            try:
                events = await self._read_after(record_id, start)
            except Exception:
                log.warning("reading new events of %s failed", record_id, exc_info=True)
                signal = ReadDatabase(followed.behind)
                for follower in followed.followers:
                    follower.queue.put_nowait(signal)
                return
            if not events:
                return
            for event in events:
                self.publish(event)
            start = events[-1].sequence

    def _wake_quiet(self, now: float) -> None:
        for followed in self._records.values():
            for follower in followed.followers:
                idle_s = follower.idle_s
                if idle_s is None:
                    continue
                if now - max(followed.last_event_at, follower.last_woken) >= idle_s:
                    follower.last_woken = now
                    follower.queue.put_nowait(QUIET)
