"""How a running step's progress reaches its workflow's event log.

The tool reports through a `ProgressRelay` (rate-bounded, with an ETA); of what passes, a
`Coarse` filter keeps a tick when the fraction moved by 5 % or 5 s went by, and one write at a
time persists it as a `workflow_progress` event naming the step. A tick that comes while a
write is in flight replaces any tick still waiting: the log gets the newest, never a backlog.
Subscribers get the events from the log like any other, so what they see is always persisted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sogni_intelligence.media.progress import Coarse, ProgressRelay, Tick

log = logging.getLogger(__name__)

Write = Callable[[Tick], Awaitable[Any]]


def step_progress_payload(step_id: str, tool: str, tick: Tick) -> dict[str, Any]:
    """A `workflow_progress` event's data for one step's tick."""
    return {
        "stepId": step_id,
        "toolName": tool,
        "progress": tick.fraction,
        "etaSeconds": tick.eta_seconds,
        "message": tick.message,
    }


class ProgressWriter:
    """Persists a job's ticks coarsely, one write at a time, newest first."""

    def __init__(self, write: Write, coarse: Coarse | None = None) -> None:
        self._write = write
        self._coarse = coarse or Coarse()
        self._waiting: Tick | None = None
        self._task: asyncio.Task[None] | None = None
        self.relay = ProgressRelay(self.offer)

    def offer(self, tick: Tick) -> None:
        if not self._coarse.keeps(tick.fraction):
            return
        self._waiting = tick
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self._waiting is not None:
            tick, self._waiting = self._waiting, None
            try:
                await self._write(tick)
            except Exception:  # progress is advice: a failed write must not fail the job
                log.warning("could not persist a progress tick", exc_info=True)

    async def close(self, ended: bool) -> None:
        """Finish the write in flight (and the one waiting) when the job `ended`; otherwise
        (cancelled, failed) drop what is left."""
        if self._task is None:
            return
        if not ended:
            self._waiting = None
            self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            if ended:
                raise
