"""The gauges read from the database, refreshed right before each scrape (nothing polls in the
background: an idle server stays idle). They count what the shared database holds, so every
process that shares it reports the same values."""

from __future__ import annotations

import asyncio
from typing import get_args

from sogni_intelligence.config import QUEUE_NAMES
from sogni_intelligence.observability.metrics import QUEUE_DEPTH, RECORDS, Refresh, replace
from sogni_intelligence.runtime import durable
from sogni_intelligence.runtime.queues import ORCHESTRATION_QUEUE
from sogni_intelligence.store.records import RecordKind, RecordStore, Status


async def refresh_gauges(records: RecordStore) -> None:
    """Records by kind and status (every pair, zeros included, so a series never vanishes),
    and the workflows waiting in each DBOS queue."""
    counts: dict[tuple[str, ...], float] = {
        (kind, status): 0 for kind in get_args(RecordKind) for status in get_args(Status)
    }
    counts.update(await records.counts())
    replace(RECORDS, counts)
    waiting = await asyncio.to_thread(durable.enqueued_by_queue)
    depths: dict[tuple[str, ...], float] = {
        (queue,): 0 for queue in (*QUEUE_NAMES, ORCHESTRATION_QUEUE)
    }
    depths.update({(queue,): count for queue, count in waiting.items()})
    replace(QUEUE_DEPTH, depths)


def gauge_refresher(records: RecordStore) -> Refresh:
    """`refresh_gauges` bound to this process's record store, for a scrape to await."""

    async def refresh() -> None:
        await refresh_gauges(records)

    return refresh
