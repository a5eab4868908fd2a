"""A process that only runs queued media jobs (for example on a GPU machine), sharing the
database and the media directory with the API processes that enqueue them."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Sequence

from sogni_intelligence.config import Settings
from sogni_intelligence.observability.server import MetricsServer
from sogni_intelligence.runtime import durable
from sogni_intelligence.runtime.gauges import gauge_refresher
from sogni_intelligence.runtime.liveness import Liveness
from sogni_intelligence.runtime.wiring import open_core


def default_executor_id(queues: Sequence[str]) -> str:
    """Stable across restarts, so a restarted worker recovers the jobs it was running."""
    return f"worker-{socket.gethostname()}-{'-'.join(sorted(queues))}"


async def run_worker(
    settings: Settings,
    queues: Sequence[str],
    executor_id: str,
    stop: asyncio.Event | None = None,
) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    # Only the analysis tools ask an LLM (about images); other workers load no model.
    core = await open_core(settings, load_models="analysis" in queues)
    core.workflows.launch()
    await durable.launch(settings, executor_id, listen=queues, orchestrates=False)
    liveness = Liveness(
        core.db,
        executor_id,
        "worker",
        queues,
        settings.heartbeat_s,
        settings.takeover_after_s,
        on_company=durable.poll_queues,
    )
    beating = asyncio.create_task(liveness.run_forever())
    metrics = None
    if settings.metrics_port is not None:
        metrics = MetricsServer(
            settings.metrics_host, settings.metrics_port, gauge_refresher(core.records)
        )
    try:
        if metrics is not None:
            await metrics.start()
        print(f"worker {executor_id} serving {', '.join(queues)}", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        if metrics is not None:
            await metrics.stop()
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        durable.shutdown()
        await core.close()
