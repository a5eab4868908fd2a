"""The progress arithmetic: ETA from pace, the rate bound, the coarse filter for persisting,
ffmpeg's progress lines, and the one-write-at-a-time writer."""

from __future__ import annotations

import asyncio

import pytest

from sogni_intelligence.media.ffmpeg import written_fraction
from sogni_intelligence.media.progress import (
    Coarse,
    ProgressRelay,
    Throttle,
    Tick,
    eta_seconds,
    spanning,
)
from sogni_intelligence.runtime.step_progress import ProgressWriter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_eta_follows_the_pace_so_far() -> None:
    assert eta_seconds(10.0, 0.25) == 30.0
    assert eta_seconds(3.0, 0.5) == 3.0
    assert eta_seconds(7.0, 1.0) == 0.0
    assert eta_seconds(5.0, 0.0) is None and eta_seconds(0.0, 0.4) is None


def test_throttle_admits_first_final_and_one_per_interval() -> None:
    clock = Clock()
    throttle = Throttle(0.5, clock)
    assert throttle.admits()
    clock.now += 0.2
    assert not throttle.admits()
    assert throttle.admits(final=True)
    clock.now += 0.4
    assert not throttle.admits()
    clock.now += 0.1
    assert throttle.admits()


def test_relay_bounds_the_rate_drops_backwards_and_adds_an_eta() -> None:
    clock = Clock()
    ticks: list[Tick] = []
    relay = ProgressRelay(ticks.append, ticks_per_second=2, clock=clock)
    relay(0.0, "starting")  # nothing done yet: not a tick
    for step in range(1, 41):  # 40 reports over 4 s: at most 2 a second pass
        clock.now += 0.1
        relay(step / 50, "encoding")
    relay(0.1, "a restarted count")  # behind what was told: dropped
    relay(1.0, None)  # the final always passes
    fractions = [t.fraction for t in ticks]
    assert 8 <= len(ticks) <= 10
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(t.message not in ("a restarted count", "starting") for t in ticks)
    first = ticks[0]
    # 0.1 s in at 2 %: 98 % left at that pace is 4.9 s.
    assert first.fraction == 0.02 and first.eta_seconds == 4.9
    assert ticks[-1].eta_seconds == 0.0


def test_coarse_keeps_a_five_percent_move_or_five_seconds() -> None:
    clock = Clock()
    coarse = Coarse(step=0.05, interval_s=5.0, clock=clock)
    assert coarse.keeps(0.10)
    assert not coarse.keeps(0.12)
    assert coarse.keeps(0.15)
    clock.now += 4.9
    assert not coarse.keeps(0.16)
    clock.now += 0.2
    assert coarse.keeps(0.16)
    assert coarse.keeps(1.0)


def test_spanning_maps_a_part_onto_the_whole() -> None:
    seen: list[float] = []
    part = spanning(lambda fraction, message=None: seen.append(fraction), 0.3, 0.9)
    part(0.0, None)
    part(0.5, None)
    part(1.5, None)
    assert seen == pytest.approx([0.3, 0.6, 0.9])


def test_ffmpeg_progress_lines() -> None:
    assert written_fraction("out_time_us=2500000\n", 10.0) == 0.25
    assert written_fraction("out_time_ms=5000000", 10.0) == 0.5
    assert written_fraction("out_time_us=N/A", 10.0) is None
    assert written_fraction("frame=12", 10.0) is None
    assert written_fraction("out_time_us=99000000", 10.0) == 1.0


async def test_writer_persists_one_at_a_time_and_keeps_only_the_newest() -> None:
    written: list[float] = []
    gate = asyncio.Event()

    async def write(tick: Tick) -> None:
        await gate.wait()
        written.append(tick.fraction)

    writer = ProgressWriter(write, Coarse(step=0.05, interval_s=60))
    writer.offer(Tick(0.1, None, None))
    await asyncio.sleep(0)  # the write of 0.1 starts and waits
    for fraction in (0.2, 0.3, 0.31, 0.4):
        writer.offer(Tick(fraction, None, None))
    gate.set()
    await writer.close(ended=True)
    # 0.1 was in flight; 0.2 and 0.3 were replaced while it waited; 0.31 never moved 5 %.
    assert written == [0.1, 0.4]


async def test_writer_drops_what_is_left_when_the_job_did_not_end() -> None:
    written: list[float] = []

    async def write(tick: Tick) -> None:
        await asyncio.sleep(10)
        written.append(tick.fraction)

    writer = ProgressWriter(write)
    writer.offer(Tick(0.5, None, None))
    await asyncio.sleep(0)
    await asyncio.wait_for(writer.close(ended=False), 1)
    assert written == []
