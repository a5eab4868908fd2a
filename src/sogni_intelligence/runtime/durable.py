"""The DBOS engine under the durable records: one per process, on a SQLite file by default
or on the PostgreSQL server of the application database."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dbos import DBOS
from dbos._dbos import _get_dbos_instance
from dbos._schemas.system_database import SystemSchema
from dbos._utils import GlobalParams

from sogni_intelligence import __version__
from sogni_intelligence.config import Settings
from sogni_intelligence.runtime.queues import (
    ORCHESTRATION_QUEUE,
    QUEUE_SLOTS,
    QueueSlots,
    register_queues,
)

APP_NAME = "sogni-intelligence"
SQLITE_SYSTEM_POOL = 2
#: The system database engine of the DBOS launched in this process, which we made and close.
_SYSTEM_ENGINES: list[sa.Engine | None] = []
#: The queues the DBOS of this process takes work from, once it polls them (`poll_queues`).
_POLLED: list[str] = []


def system_database_url(database_url: str, data_dir: Path) -> str:
    """DBOS's own tables: next to ours on PostgreSQL, in their own SQLite file otherwise."""
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql://" + database_url[len(prefix) :]
    if database_url.startswith("postgresql://"):
        return database_url
    return f"sqlite:///{data_dir / 'dbos.sqlite'}"


def sqlite_system_engine(url: str) -> sa.Engine:
    """DBOS's tables on SQLite, kept the way ours are: a write-ahead log with
    `synchronous=NORMAL`, so a commit survives the process being killed without an fsync each
    (SQLite's default, a rollback journal synced twice per commit, made each DBOS operation
    cost milliseconds of disk waits). Writers still take the lock at BEGIN (IMMEDIATE), as
    DBOS's own SQLite engine does. On SQLite every DBOS transaction takes the write lock, so
    more connections only make its writers sleep in SQLite's busy handler; a small pool
    queues them instead and hands the connection over at once."""
    engine = sa.create_engine(
        url, pool_size=SQLITE_SYSTEM_POOL, max_overflow=0, pool_timeout=30, pool_pre_ping=True
    )

    @sa.event.listens_for(engine, "connect")
    def configure(connection: Any, _: Any) -> None:
        connection.isolation_level = "IMMEDIATE"
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=30000")
        connection.execute("PRAGMA foreign_keys=ON")

    return engine


async def launch(
    settings: Settings,
    executor_id: str = "local",
    listen: Sequence[str] | None = None,
    orchestrates: bool = True,
) -> None:
    """Start DBOS on the running event loop (queued jobs and recovered workflows run on it);
    it recovers the workflows this executor left unfinished. A fixed application version lets
    a restarted process (even after an upgrade) pick them up. `listen` names the media queues
    this process takes jobs from (default: `settings.worker_queues`); with `orchestrates` it
    also takes workflows and chat runs handed over from a dead process (an API process)."""
    url = system_database_url(settings.resolved_database_url, settings.data_dir)
    engine = sqlite_system_engine(url) if url.startswith("sqlite") else None
    _SYSTEM_ENGINES.append(engine)
    DBOS(
        config={
            "name": APP_NAME,
            "system_database_url": url,
            "application_version": __version__,
            "executor_id": executor_id,
            "log_level": "WARNING",
            **({"system_database_engine": engine} if engine is not None else {}),
        }
    )
    served = list(settings.worker_queues if listen is None else listen)
    QUEUE_SLOTS.bind(QueueSlots(served, settings.queue_concurrency))
    _POLLED.clear()
    _POLLED.extend([*served, *([ORCHESTRATION_QUEUE] if orchestrates else [])])
    DBOS.listen_queues([])  # until `poll_queues`
    DBOS.launch()
    await register_queues(settings.queue_concurrency, settings.queue_poll_s)
    waiting = await asyncio.to_thread(enqueued_by_queue)
    if any(waiting.get(queue) for queue in _POLLED):
        poll_queues()


def poll_queues() -> None:
    """Begin polling this process's queues (later calls change nothing).

    Only another process puts work on them: a process runs the jobs of the queues it serves
    inside their workflows, and DBOS recovers its own unfinished work through DBOS's internal
    queue. So a process that is alone on its database polls nothing (five polls every
    `queue_poll_s`, a quarter of an idle server's CPU), and begins when it may have company:
    another process's heartbeat, work found waiting at launch, or a job it queues itself.
    DBOS names the queues a process polls only before launch (`listen_queues`); its queue
    manager re-reads that list every second and starts a poller for each queue added."""
    dbos = _get_dbos_instance()
    listening = dbos._listening_queues or []
    missing = [queue for queue in _POLLED if queue not in listening]
    if missing:
        dbos._listening_queues = [*listening, *missing]


def take_over(executor_id: str) -> int:
    """Put the unfinished DBOS workflows of a dead executor back on a queue; how many. A job
    keeps its media queue; a workflow started outside any queue (a creative workflow, a chat
    run) goes on the orchestration queue. A workflow another process already took is left
    alone, so a repeated takeover does nothing. (DBOS's public recovery puts them on its
    internal queue, which every process serves, workers without the chat runtime included.)"""
    system = _get_dbos_instance()._sys_db
    pending = system.get_pending_workflows(executor_id, GlobalParams.app_version)
    return sum(
        system.reenqueue_for_recovery(w.workflow_id, [executor_id], ORCHESTRATION_QUEUE)
        for w in pending
    )


def enqueued_by_queue() -> dict[str, int]:
    """How many workflows wait in each DBOS queue (ENQUEUED: not yet taken by a process),
    counted in DBOS's system table with one query. Blocking: call it on a worker thread."""
    status = SystemSchema.workflow_status
    query = (
        sa.select(status.c.queue_name, sa.func.count())
        .where(status.c.status == "ENQUEUED", status.c.queue_name.is_not(None))
        .group_by(status.c.queue_name)
    )
    with _get_dbos_instance()._sys_db.engine.connect() as conn:
        return {name: int(count) for name, count in conn.execute(query)}


def shutdown() -> None:
    """Stop DBOS. It made its own thread pool the loop's default executor and shuts that pool
    down, so the loop gets a fresh one for the `to_thread` calls of the rest of the shutdown."""
    DBOS.destroy(destroy_registry=False)
    while _SYSTEM_ENGINES:  # DBOS leaves an engine it was given to its owner
        engine = _SYSTEM_ENGINES.pop()
        if engine is not None:
            engine.dispose()
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor())
