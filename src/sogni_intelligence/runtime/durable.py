"""The DBOS engine under the durable records: one per process, on a SQLite file by default
or on the PostgreSQL server of the application database."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dbos import DBOS

from sogni_intelligence import __version__
from sogni_intelligence.config import Settings
from sogni_intelligence.runtime.queues import QUEUE_SLOTS, QueueSlots, register_queues

APP_NAME = "sogni-intelligence"
SQLITE_SYSTEM_POOL = 2


def system_database_url(database_url: str, data_dir: Path) -> str:
    """DBOS's own tables: next to ours on PostgreSQL, in their own SQLite file otherwise."""
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql://" + database_url[len(prefix) :]
    if database_url.startswith("postgresql://"):
        return database_url
    return f"sqlite:///{data_dir / 'dbos.sqlite'}"


async def launch(
    settings: Settings, executor_id: str = "local", listen: Sequence[str] | None = None
) -> None:
    """Start DBOS on the running event loop (queued jobs and recovered workflows run on it);
    it recovers the workflows this executor left unfinished. A fixed application version lets
    a restarted process (even after an upgrade) pick them up. `listen` names the queues this
    process takes jobs from (default: `settings.worker_queues`)."""
    url = system_database_url(settings.resolved_database_url, settings.data_dir)
    DBOS(
        config={
            "name": APP_NAME,
            "system_database_url": url,
            "application_version": __version__,
            "executor_id": executor_id,
            "log_level": "WARNING",
            # On SQLite every DBOS transaction takes the write lock (BEGIN IMMEDIATE), so
            # more connections only make its writers sleep in SQLite's busy handler; a small
            # pool queues them instead and hands the connection over at once.
            **({"sys_db_pool_size": SQLITE_SYSTEM_POOL} if url.startswith("sqlite") else {}),
        }
    )
    served = settings.worker_queues if listen is None else listen
    QUEUE_SLOTS.bind(QueueSlots(served, settings.queue_concurrency))
    DBOS.listen_queues(served)
    DBOS.launch()
    await register_queues(settings.queue_concurrency, settings.queue_poll_s)


def shutdown() -> None:
    """Stop DBOS. It made its own thread pool the loop's default executor and shuts that pool
    down, so the loop gets a fresh one for the `to_thread` calls of the rest of the shutdown."""
    DBOS.destroy(destroy_registry=False)
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor())
