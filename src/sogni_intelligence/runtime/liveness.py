"""Liveness of the processes that share one database, and takeover of a dead one's work.

Every process (API replica or worker) writes a heartbeat row under its DBOS executor id. One of
them at a time holds the supervisor lease; it looks for executors silent for longer than the
takeover time and hands their unfinished DBOS workflows to live processes: a job goes back on
its media queue (a worker serving it takes it), a workflow or chat run onto the orchestration
queue that API processes serve. DBOS replays each from its recorded steps, so no finished step
runs again, and the dedupe keys of our events keep every event single. A process that finds
another one beside it begins polling its queues (alone, it has nothing to poll for).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from sogni_intelligence.runtime import durable
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.events import aware
from sogni_intelligence.store.models import Lease, ProcessBeat, utcnow

log = logging.getLogger(__name__)

SUPERVISOR = "supervisor"
_BEATS = ProcessBeat.__table__
_LEASES = Lease.__table__


class Liveness:
    """Beats for this process and, while it holds the lease, supervises the others."""

    def __init__(
        self,
        db: Database,
        executor_id: str,
        role: str,
        queues: Sequence[str],
        beat_s: float,
        takeover_after_s: float,
        on_company: Callable[[], None],
    ) -> None:
        """`on_company` is called on each round that finds another process's beat, or another
        process holding the lease (the process then polls the queues others may fill)."""
        self._db = db
        self._on_company = on_company
        self.executor_id = executor_id
        self._role = role
        self._queues = list(queues)
        self._beat_s = beat_s
        self._takeover_after = timedelta(seconds=takeover_after_s)

    async def run_forever(self) -> None:
        """A round every `beat_s`, supervising when leading; a failed round is retried."""
        while True:
            try:
                await self.beat_and_supervise()
            except Exception:
                log.warning("liveness round failed; retrying", exc_info=True)
            await asyncio.sleep(self._beat_s)

    async def beat_and_supervise(self) -> None:
        """One round: beat, then take over dead processes when leading."""
        if await self.round():
            await self.take_over_dead()
        else:  # another process leads
            self._on_company()

    async def round(self) -> bool:
        """Beat, and take or renew the supervisor lease, in one transaction (one commit per
        round, which is what an idle process spends on this); whether this process leads. The
        lease row is locked (PostgreSQL) or the beat's write already holds the database's
        write lock (SQLite), so one process at a time holds it. It lasts three beats: a dead
        supervisor is replaced within seconds."""
        now = utcnow()
        beat = {
            "role": self._role,
            "queues": self._queues,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "beat_at": now,
        }
        until = now + timedelta(seconds=3 * self._beat_s)

        def work(conn: Connection) -> bool:
            mine = _BEATS.c.executor_id == self.executor_id
            if conn.execute(update(_BEATS).where(mine).values(**beat)).rowcount == 0:
                conn.execute(insert(_BEATS).values(executor_id=self.executor_id, **beat))
            lease = conn.execute(
                select(_LEASES).where(_LEASES.c.name == SUPERVISOR).with_for_update()
            ).first()
            if lease is None:
                conn.execute(
                    insert(_LEASES).values(
                        name=SUPERVISOR, holder=self.executor_id, expires_at=until
                    )
                )
            elif lease.holder == self.executor_id or aware(lease.expires_at) <= now:
                conn.execute(
                    update(_LEASES)
                    .where(_LEASES.c.name == SUPERVISOR)
                    .values(holder=self.executor_id, expires_at=until)
                )
            else:
                return False
            return True

        try:
            return await self._db.write(work)
        except IntegrityError:  # another process created the lease or the beat first
            return False

    async def take_over_dead(self) -> list[str]:
        """Hand the unfinished workflows of every silent executor to live processes; the
        executors taken over. A silent one's row goes, unless it beat again meanwhile."""
        cutoff = utcnow() - self._takeover_after
        others = [
            r for r in await self._db.read(select(_BEATS)) if r.executor_id != self.executor_id
        ]
        if others:
            self._on_company()
        dead = [r for r in others if aware(r.beat_at) < cutoff]
        for row in dead:
            moved = await asyncio.to_thread(durable.take_over, row.executor_id)
            gone = delete(_BEATS).where(
                _BEATS.c.executor_id == row.executor_id, _BEATS.c.beat_at == row.beat_at
            )
            await self._db.write(lambda conn, gone=gone: conn.execute(gone))
            log.warning(
                "%s %s (%s) silent since %s: %d unfinished workflows handed over",
                row.role,
                row.executor_id,
                row.host,
                aware(row.beat_at).isoformat(),
                moved,
            )
        return [r.executor_id for r in dead]
