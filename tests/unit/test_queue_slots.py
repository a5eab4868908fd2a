"""The per-process bound on jobs of a queue, shared by queued and directly started jobs."""

from __future__ import annotations

import asyncio

from sogni_intelligence.runtime.queues import QueueSlots


async def test_a_full_queue_makes_the_next_job_wait_until_a_slot_frees() -> None:
    slots = QueueSlots(["video"], {"video": 1})
    order: list[str] = []
    first_inside = asyncio.Event()
    let_first_go = asyncio.Event()

    async def first() -> None:
        async with slots.held("video"):
            order.append("first in")
            first_inside.set()
            await let_first_go.wait()
            order.append("first out")

    async def second() -> None:
        await first_inside.wait()
        async with slots.held("video"):
            order.append("second in")

    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    await first_inside.wait()
    for _ in range(5):  # the second job gets several chances to (wrongly) enter
        await asyncio.sleep(0.03)
    assert order == ["first in"]
    let_first_go.set()
    await asyncio.gather(*tasks)
    assert order == ["first in", "first out", "second in"]


async def test_a_cancelled_waiter_takes_no_slot() -> None:
    slots = QueueSlots(["image"], {"image": 1})
    async with slots.held("image"):
        waiter = asyncio.create_task(slots.held("image").__aenter__())
        await asyncio.sleep(0.05)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
    async with asyncio.timeout(2):
        async with slots.held("image"):
            pass


def test_the_served_queues_are_the_ones_given() -> None:
    assert QueueSlots(["image", "audio"], {"image": 2}).served() == ["audio", "image"]
    assert QueueSlots([], {}).served() == []


async def test_an_unserved_queue_is_not_bounded_here() -> None:
    slots = QueueSlots([], {})
    async with asyncio.timeout(2):
        async with slots.held("video"), slots.held("video"):
            pass
