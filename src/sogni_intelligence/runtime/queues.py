"""The DBOS queues workflow steps run on: one per kind of media work, so a GPU machine can run
`sogni-intelligence worker --queues image,video` while API processes only enqueue. Which queue
each tool runs on is the tool's own `queue`."""

from __future__ import annotations

from collections.abc import Mapping

from dbos import DBOS

from sogni_intelligence.config import QUEUE_NAMES


async def register_queues(concurrency: Mapping[str, int], poll_s: float) -> None:
    """Declare every queue (after DBOS is launched); `concurrency` is per worker process."""
    for name in QUEUE_NAMES:
        await DBOS.register_queue_async(
            name, worker_concurrency=concurrency.get(name, 1), polling_interval_sec=poll_s
        )
