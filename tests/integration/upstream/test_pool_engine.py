"""A pool of upstream engines against several fake upstream servers over real HTTP: where
requests go, what happens when a server dies or fails, and how it comes back.

The pools here check their members only when a test says so (`check()`), except in the test
of the background checks itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import pytest
from fake_upstream import FakeFleet

from sogni_intelligence.config import ModelConfig
from sogni_intelligence.llm.pool import PoolEngine
from sogni_intelligence.llm.protocol import EngineError
from sogni_intelligence.llm.registry import build_engine

MakePool = Callable[..., Awaitable[PoolEngine]]
TEXT = "w0 w1 w2 "  # what the fake's `chunks-3` mode says


@pytest.fixture
def fleet() -> Iterator[FakeFleet]:
    fleet = FakeFleet(3)
    try:
        yield fleet
    finally:
        fleet.close()


def pool_config(
    fleet: FakeFleet,
    models: Sequence[str] = ("chunks-3",) * 3,
    weights: Sequence[float] = (1, 1, 1),
    **fields: Any,
) -> ModelConfig:
    upstreams = [
        {"base_url": fake.url + "/v1", "model": model, "weight": weight}
        for fake, model, weight in zip(fleet.fakes, models, weights, strict=True)
    ]
    fields.setdefault("health_interval_s", 3600)
    return ModelConfig(id="pooled", engine="upstream", upstreams=upstreams, **fields)


@pytest.fixture
async def make_pool(fleet: FakeFleet) -> AsyncIterator[MakePool]:
    pools: list[PoolEngine] = []

    async def make(*args: Any, **fields: Any) -> PoolEngine:
        pool = build_engine(pool_config(fleet, *args, **fields))
        assert isinstance(pool, PoolEngine)
        await pool.start()
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        await pool.close()


def chat() -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": "Say hello"}]}


async def text_of(pool: PoolEngine, **extra: Any) -> str:
    parts = []
    async for chunk in pool.stream({**chat(), **extra}):
        parts += [choice["delta"].get("content") or "" for choice in chunk["choices"]]
    return "".join(parts)


def received(fleet: FakeFleet) -> list[int]:
    return [len(fake.requests) for fake in fleet.fakes]


async def engine_error(work: Awaitable[Any]) -> EngineError:
    with pytest.raises(EngineError) as info:
        await work
    return info.value


async def test_open_requests_spread_over_the_members_by_weight(
    fleet: FakeFleet, make_pool: MakePool
) -> None:
    pool = await make_pool(("stall",) * 3, (1, 1, 2))
    streams = [pool.stream(chat()) for _ in range(8)]
    for stream in streams:  # each request reaches its upstream and stays open there
        await anext(stream)

    assert received(fleet) == [2, 2, 4]
    assert [member.in_flight for member in pool.members] == [2, 2, 4]

    for stream in streams:
        await stream.aclose()  # type: ignore[attr-defined]
    assert [member.in_flight for member in pool.members] == [0, 0, 0]
    records = [record for fake in fleet.fakes for record in fake.requests]
    assert all([await asyncio.to_thread(r.disconnected.wait, 2.0) for r in records])


async def test_idle_members_take_turns(fleet: FakeFleet, make_pool: MakePool) -> None:
    pool = await make_pool()

    assert [await text_of(pool) for _ in range(6)] == [TEXT] * 6
    assert received(fleet) == [2, 2, 2]


async def test_a_killed_upstream_is_skipped_without_an_error_and_returns_after_a_check(
    fleet: FakeFleet, make_pool: MakePool
) -> None:
    pool = await make_pool()
    assert [await text_of(pool) for _ in range(3)] == [TEXT] * 3
    dead = pool.members[0]

    await asyncio.to_thread(fleet.stop, 0)
    before = received(fleet)
    assert [await text_of(pool) for _ in range(6)] == [TEXT] * 6

    assert not dead.healthy and dead.in_flight == 0
    assert dead.last_error is not None and "unreachable" in dead.last_error
    after = received(fleet)
    assert after[0] == before[0] and sum(after) - sum(before) == 6
    await pool.check()  # still refusing: it stays out
    assert not dead.healthy

    await asyncio.to_thread(fleet.start, 0)
    await pool.check()
    assert dead.healthy and dead.failures == 0
    assert [await text_of(pool) for _ in range(3)] == [TEXT] * 3
    assert received(fleet)[0] == after[0] + 1  # back in the turns


async def test_an_upstream_error_before_the_first_chunk_is_tried_on_another_member(
    fleet: FakeFleet, make_pool: MakePool
) -> None:
    pool = await make_pool(("status-500", "chunks-3", "chunks-3"), unhealthy_after=2)
    broken = pool.members[0]

    assert [await text_of(pool) for _ in range(6)] == [TEXT] * 6

    # It answered twice with a 500, then was out: no client saw either failure.
    assert received(fleet) == [2, 3, 3]
    assert not broken.healthy and broken.failures == 2
    assert broken.last_error is not None and "fake upstream failure 500" in broken.last_error


async def test_a_request_an_upstream_refuses_is_not_sent_to_another(
    fleet: FakeFleet, make_pool: MakePool
) -> None:
    pool = await make_pool(("status-400", "chunks-3", "chunks-3"))

    error = await engine_error(text_of(pool))

    assert error.status == 400
    assert received(fleet) == [1, 0, 0]
    assert pool.members[0].healthy and pool.members[0].failures == 0


@pytest.mark.parametrize("mode", ["truncated", "error-chunk"])
async def test_no_second_try_once_a_chunk_went_to_the_caller(
    fleet: FakeFleet, make_pool: MakePool, mode: str
) -> None:
    pool = await make_pool((mode,) * 3)
    seen: list[dict[str, Any]] = []

    async def consume() -> None:
        async for chunk in pool.stream(chat()):
            seen.append(chunk)

    error = await engine_error(consume())

    assert error.status == 502
    assert len(seen) == 1
    assert sum(received(fleet)) == 1
    assert all(member.failures == 0 for member in pool.members)


async def test_with_every_member_down_the_answer_is_a_503(
    fleet: FakeFleet, make_pool: MakePool
) -> None:
    await asyncio.to_thread(fleet.stop, 2)
    pool = await make_pool()
    # The check at start found the stopped one: no request goes there.
    assert [m.healthy for m in pool.members] == [True, True, False]

    for index in (0, 1):
        await asyncio.to_thread(fleet.stop, index)
    error = await engine_error(text_of(pool))

    assert (error.status, error.type, error.code) == (503, "server_error", "upstream_unavailable")
    assert "'pooled'" in error.message
    for fake in fleet.fakes:
        assert f"{fake.url}/v1: upstream {fake.url}/v1 is unreachable" in error.message
    assert not any(m.healthy for m in pool.members)


async def test_failed_checks_take_members_out_and_a_passed_one_brings_them_back(
    fleet: FakeFleet, make_pool: MakePool
) -> None:
    pool = await make_pool(unhealthy_after=2)
    for fake in fleet.fakes[:2]:
        fake.healthy = False

    await pool.check()
    assert [m.healthy for m in pool.members] == [True, True, True]  # once is not enough
    await pool.check()
    assert [m.healthy for m in pool.members] == [False, False, True]
    assert (
        pool.members[0].last_error
        == f"upstream {fleet.fakes[0].url}/v1 answered GET /models with 503"
    )

    assert [await text_of(pool) for _ in range(3)] == [TEXT] * 3
    assert received(fleet) == [0, 0, 3]

    fleet.fakes[2].healthy = False
    await pool.check()
    await pool.check()
    error = await engine_error(text_of(pool))
    assert error.status == 503
    assert received(fleet) == [0, 0, 3]  # refused without asking anyone

    fleet.fakes[0].healthy = True
    await pool.check()
    assert [m.healthy for m in pool.members] == [True, False, False]
    assert await text_of(pool) == TEXT
    assert received(fleet) == [1, 0, 3]


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the pool's background checks did not act"
        await asyncio.sleep(0.02)


async def test_the_background_checks_follow_a_member_down_and_up(
    fleet: FakeFleet, make_pool: MakePool
) -> None:
    pool = await make_pool(health_interval_s=0.05)
    member = pool.members[1]

    await asyncio.to_thread(fleet.stop, 1)
    await wait_until(lambda: not member.healthy)
    await asyncio.to_thread(fleet.start, 1)
    await wait_until(lambda: member.healthy)

    assert fleet.fakes[1].health_checks >= 2  # the first check at start, one after it returned


@pytest.mark.slow
async def test_the_embedded_model_shares_a_pool_and_answers_alone_when_the_upstream_dies(
    fleet: FakeFleet,
) -> None:
    config = ModelConfig(
        id="smollm2",
        n_parallel=2,
        n_ctx=4096,
        upstream_model="chunks-3",
        upstreams=[{"base_url": fleet.fakes[0].url + "/v1"}],
        health_interval_s=3600,
    )
    pool = build_engine(config)
    assert isinstance(pool, PoolEngine)
    await pool.start()
    try:
        assert pool.info.engine == "mixed"
        embedded, upstream = pool.members
        # Idle members take turns: the embedded model first, then the upstream.
        first, second = [await text_of(pool, max_tokens=8, temperature=0) for _ in range(2)]
        assert first and first != TEXT
        assert second == TEXT and len(fleet.fakes[0].requests) == 1

        await asyncio.to_thread(fleet.stop, 0)
        texts = [await text_of(pool, max_tokens=8, temperature=0) for _ in range(3)]

        assert all(text and text != TEXT for text in texts)  # the real model's words
        assert not upstream.healthy and embedded.healthy
        assert len(fleet.fakes[0].requests) == 1
    finally:
        await pool.close()
