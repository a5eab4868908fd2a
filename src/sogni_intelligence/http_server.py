"""uvicorn's server, waking once a second when idle instead of ten times.

uvicorn's main loop sleeps 0.1 s between looks at its exit flag and refreshes the `Date`
header every tenth look. On an idle server those wake-ups are a good share of the CPU the
process spends, so this one looks once a second (the header still changes every second) and
is woken at once when something asks it to exit (a signal, or `should_exit = True` from any
thread).
"""

from __future__ import annotations

import asyncio
import contextlib

import uvicorn

#: uvicorn refreshes the Date header on ticks that are multiples of ten, and wraps its counter
#: at a day of 0.1 s ticks.
_TICKS_PER_LOOK = 10
_TICK_WRAP = 864_000
LOOK_EVERY_S = 1.0


class QuietServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit_asked: asyncio.Event | None = None
        self._should_exit = False
        super().__init__(config)

    @property  # type: ignore[override]
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._should_exit = value
        if value and self._loop is not None and self._exit_asked is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                self._loop.call_soon_threadsafe(self._exit_asked.set)

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._exit_asked = asyncio.Event()
        ticks = 0
        while not await self.on_tick(ticks):
            ticks = (ticks + _TICKS_PER_LOOK) % _TICK_WRAP
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit_asked.wait(), LOOK_EVERY_S)
