"""The progress callback a media job reports through, and the arithmetic that turns its raw
fractions into what clients are told.

A backend calls `Progress(fraction, message)` with a fraction in [0, 1] as often as its own
work allows (every ffmpeg progress block, every rendered frame). Tools pass theirs
(`ToolContext.progress`) to the backends they call. `ProgressRelay` sits between a job and
the events it feeds: it keeps fractions monotonic, estimates the time left from the time
spent, and lets through at most a couple of ticks a second, so a chatty encoder cannot flood a
stream or the event log.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

Progress = Callable[[float, str | None], None]


def unheard(fraction: float, message: str | None = None) -> None:
    """A `Progress` for a caller that does not follow the job."""


#: Live ticks a job may send per second (the first and the last always pass).
TICKS_PER_SECOND = 2.0


def eta_seconds(elapsed_s: float, fraction: float) -> float | None:
    """Seconds left if the rest goes at the pace so far; None until there is a pace to go by."""
    if fraction <= 0 or elapsed_s <= 0:
        return None
    if fraction >= 1:
        return 0.0
    return round(elapsed_s * (1 - fraction) / fraction, 1)


def spanning(progress: Progress, start: float, end: float) -> Progress:
    """`progress` for one part of a job that covers [start, end] of the whole."""

    def report(fraction: float, message: str | None = None) -> None:
        progress(start + (end - start) * min(1.0, max(0.0, fraction)), message)

    return report


@dataclass(frozen=True)
class Tick:
    """One progress report as clients get it."""

    fraction: float
    message: str | None
    eta_seconds: float | None


class Throttle:
    """Passes at most one tick per `interval_s`; the first and a final one always pass. A
    tick that does not pass is dropped, never queued: the next one says more anyway."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._last: float | None = None

    def admits(self, final: bool = False) -> bool:
        now = self._clock()
        if final or self._last is None or now - self._last >= self.interval_s:
            self._last = now
            return True
        return False


class ProgressRelay:
    """A `Progress` that forwards rate-bounded, increasing ticks with an ETA to `sink`."""

    def __init__(
        self,
        sink: Callable[[Tick], None],
        ticks_per_second: float = TICKS_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sink = sink
        self._clock = clock
        self._started = clock()
        self._throttle = Throttle(1 / ticks_per_second, clock)
        self._fraction = 0.0

    def __call__(self, fraction: float, message: str | None = None) -> None:
        fraction = min(1.0, fraction)
        # Nothing done says nothing (the step's start is told already); a backend that
        # restarts a count does not take the job backwards.
        if fraction <= 0 or fraction < self._fraction:
            return
        self._fraction = fraction
        if not self._throttle.admits(final=fraction >= 1.0):
            return
        eta = eta_seconds(self._clock() - self._started, fraction)
        self._sink(Tick(round(fraction, 4), message, eta))


class Coarse:
    """Which ticks are worth persisting: one that moved the fraction by `step` or came
    `interval_s` after the last kept one (and always the first and a final one)."""

    def __init__(
        self,
        step: float = 0.05,
        interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.step = step
        self.interval_s = interval_s
        self._clock = clock
        self._kept: tuple[float, float] | None = None

    def keeps(self, fraction: float) -> bool:
        now = self._clock()
        if self._kept is not None and fraction < 1.0:
            kept_fraction, kept_at = self._kept
            moved = fraction - kept_fraction + 1e-9  # 0.15 - 0.10 is a hair under 0.05
            if moved < self.step and now - kept_at < self.interval_s:
                return False
        self._kept = (fraction, now)
        return True


@contextlib.asynccontextmanager
async def file_growth(
    path: Path, expected_bytes: float, progress: Progress, message: str, period_s: float = 0.1
) -> AsyncIterator[None]:
    """While the body runs, report how much of `path` is written against the size it will
    have: the progress of a renderer that writes its output as it goes and tells nothing."""

    async def watch() -> None:
        while True:
            await asyncio.sleep(period_s)
            with contextlib.suppress(FileNotFoundError):
                written = path.stat().st_size
                if written > 0:
                    progress(min(0.99, written / expected_bytes), message)

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        yield
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
