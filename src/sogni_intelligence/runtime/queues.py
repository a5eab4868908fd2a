"""The DBOS queues workflow steps run on: one per kind of media work, so a GPU machine can run
`sogni-intelligence worker --queues image,video` while API processes only enqueue. Which queue
each tool runs on is the tool's own `queue`."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager

from dbos import DBOS

from sogni_intelligence.config import QUEUE_NAMES
from sogni_intelligence.runtime.launched import Launched

#: Where workflows and chat runs of a dead process wait for an API process to take them over.
ORCHESTRATION_QUEUE = "orchestration"


async def register_queues(concurrency: Mapping[str, int], poll_s: float) -> None:
    """Declare every queue (after DBOS is launched); `concurrency` is per worker process."""
    for name in QUEUE_NAMES:
        await DBOS.register_queue_async(
            name, worker_concurrency=concurrency.get(name, 1), polling_interval_sec=poll_s
        )
    await DBOS.register_queue_async(ORCHESTRATION_QUEUE, polling_interval_sec=poll_s)


class QueueSlots:
    """How many jobs of each queue run in this process at once, however they arrive.

    A workflow step on a queue this process serves runs here at once, inside its workflow,
    without a trip through the DBOS queue; jobs of other processes come through the queue.
    Both hold one of the queue's slots while they run, so together they stay within the
    queue's concurrency. A thread-safe semaphore, because DBOS may run a dequeued job on its own
    event loop; a waiting job looks again now and then (cancellable at any point)."""

    def __init__(self, served: Iterable[str], concurrency: Mapping[str, int]) -> None:
        self._slots = {q: threading.BoundedSemaphore(concurrency.get(q, 1)) for q in served}

    def served(self) -> list[str]:
        return sorted(self._slots)

    @asynccontextmanager
    async def held(self, queue: str) -> AsyncIterator[None]:
        slot = self._slots.get(queue)
        if slot is None:  # a job recovered where its queue is not served: nothing to share
            yield
            return
        wait = SLOT_FIRST_WAIT_S
        while not slot.acquire(blocking=False):
            await asyncio.sleep(wait)
            wait = min(wait * 2, SLOT_LONGEST_WAIT_S)
        try:
            yield
        finally:
            slot.release()


#: A waiting job looks again after 5 ms, then less and less often, at most every 100 ms (a
#: queue of long jobs waits without costing CPU; a slot freed soon is taken soon).
SLOT_FIRST_WAIT_S = 0.005
SLOT_LONGEST_WAIT_S = 0.1

#: The queues of this process, bound by `durable.launch` before DBOS recovers any job.
QUEUE_SLOTS: Launched[QueueSlots] = Launched("the media queues")
