"""Heartbeats and the supervisor lease on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import delete, select

from sogni_intelligence.runtime.liveness import Liveness
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.models import Lease, ProcessBeat


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.create_all()
    async with database.transaction() as session:
        for table in (Lease, ProcessBeat):
            await session.execute(delete(table))
    yield database
    await database.close()


def _process(
    db: Database,
    executor_id: str,
    beat_s: float = 0.1,
    on_company: Callable[[], None] = lambda: None,
) -> Liveness:
    return Liveness(
        db, executor_id, "api", ["image"], beat_s, takeover_after_s=0.3, on_company=on_company
    )


async def test_one_supervisor_at_a_time_and_a_dead_ones_lease_passes_on(db: Database) -> None:
    first, second = _process(db, "api-1"), _process(db, "api-2")
    leading = await asyncio.gather(first.round(), second.round())
    assert sorted(leading) == [False, True]
    leader, other = (first, second) if leading[0] else (second, first)
    assert await leader.round()  # renewed
    assert not await other.round()
    await asyncio.sleep(0.35)  # three beats without renewal: the lease has run out
    assert await other.round()
    assert not await leader.round()


async def test_beats_record_each_process_and_its_queues(db: Database) -> None:
    process = _process(db, "worker-1")
    await process.round()
    async with db.session() as session:
        first = await session.get(ProcessBeat, "worker-1")
    assert first is not None and first.queues == ["image"] and first.role == "api"
    await asyncio.sleep(0.01)
    await process.round()
    async with db.session() as session:
        beats = list(await session.scalars(select(ProcessBeat)))
    assert [b.executor_id for b in beats] == ["worker-1"]
    assert beats[0].beat_at > first.beat_at


async def test_a_process_alone_has_no_company_until_another_beats(db: Database) -> None:
    told: list[str] = []
    first = _process(db, "api-1", on_company=lambda: told.append("api-1"))
    second = _process(db, "api-2", on_company=lambda: told.append("api-2"))
    for _ in range(3):
        await first.beat_and_supervise()
    assert told == []
    await second.beat_and_supervise()  # the lease is the first one's: someone else is there
    assert told == ["api-2"]
    await first.beat_and_supervise()  # the leader finds the second one's beat
    assert told == ["api-2", "api-1"]
