"""Durable records, event logs and idempotency keys on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete

from sogni_intelligence.errors import ServiceError
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.models import DurableRecord, IdempotencyKey, RecordEvent
from sogni_intelligence.store.records import BEFORE_FIRST, Announcement, RecordStore


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.create_all()
    async with database.session() as session, session.begin():
        for table in (RecordEvent, IdempotencyKey, DurableRecord):
            await session.execute(delete(table))
    yield database
    await database.close()


@pytest.fixture
def records(db: Database) -> RecordStore:
    return RecordStore(db, poll_interval_s=0.05)


async def test_create_get_and_ownership(records: RecordStore) -> None:
    record, replayed = await records.create("workflow", "key_a", {"title": "t"})
    assert not replayed and record.id.startswith("wf_") and record.status == "queued"
    assert (await records.get(record.id, "key_a")).data == {"title": "t"}  # type: ignore[union-attr]
    assert await records.get(record.id, "key_b") is None
    run, _ = await records.create("chat_run", "key_a", {})
    assert run.id.startswith("run_")


async def test_list_pages_newest_first_per_owner_and_kind(records: RecordStore) -> None:
    made = [(await records.create("workflow", "key_a", {"n": i}))[0].id for i in range(5)]
    await records.create("workflow", "key_b", {})
    await records.create("chat_run", "key_a", {})
    first, next_offset = await records.list("workflow", "key_a", 0, 3)
    second, last = await records.list("workflow", "key_a", next_offset or 0, 3)
    assert next_offset == 3 and last is None
    assert {r.id for r in first + second} == set(made) and len(first + second) == 5


async def test_idempotent_create(records: RecordStore) -> None:
    body = {"input": {"steps": [1]}}
    first, replayed = await records.create(
        "workflow", "key_a", {}, idempotency=("start", "k1", body)
    )
    again, replayed_again = await records.create(
        "workflow", "key_a", {}, idempotency=("start", "k1", body)
    )
    assert not replayed and replayed_again and again.id == first.id
    with pytest.raises(ServiceError) as info:
        await records.create("workflow", "key_a", {}, idempotency=("start", "k1", {"other": 1}))
    assert info.value.status == 409
    # the key is scoped per owner and endpoint
    other_owner, replayed = await records.create(
        "workflow", "key_b", {}, idempotency=("start", "k1", body)
    )
    other_endpoint, replayed2 = await records.create(
        "workflow", "key_a", {}, idempotency=("reseed", "k1", body)
    )
    assert (
        not replayed and not replayed2 and len({first.id, other_owner.id, other_endpoint.id}) == 3
    )


async def test_concurrent_starts_with_one_key_make_one_record(records: RecordStore) -> None:
    body = {"x": 1}
    results = await asyncio.gather(
        *(
            records.create("workflow", "key_a", {}, idempotency=("start", "race", body))
            for _ in range(8)
        )
    )
    assert len({record.id for record, _ in results}) == 1
    assert sum(1 for _, replayed in results if not replayed) == 1
    page, _ = await records.list("workflow", "key_a", 0, 50)
    assert len(page) == 1


async def test_transition_is_compare_and_set(records: RecordStore) -> None:
    record, _ = await records.create("workflow", "key_a", {})
    running = await records.transition(record.id, "running", allowed_from={"queued"})
    assert running is not None and running.status == "running"
    cancelled = await records.transition(
        record.id,
        "cancelled",
        allowed_from={"queued", "running"},
        patch={"cancellationReason": "user"},
    )
    assert cancelled is not None and cancelled.data["cancellationReason"] == "user"
    late = await records.transition(record.id, "completed", allowed_from={"running"})
    assert late is None
    assert (await records.get(record.id)).status == "cancelled"  # type: ignore[union-attr]


async def test_a_transition_and_its_event_are_written_together(records: RecordStore) -> None:
    """Racing appends take sequences before the transition's event without gaps (those that
    come after the record ended are refused, so the terminal event stays last); a refused
    transition writes no event; a live follower gets the event once it is committed."""
    record, _ = await records.create("chat_run", "key_a", {})
    follower = records.follow(record.id)
    first = asyncio.create_task(anext(follower))
    await asyncio.sleep(0.02)  # following, caught up on an empty log
    cancel = Announcement("run_cancelled", {"status": "cancelled"}, "terminal")
    moved, *appended = await asyncio.gather(
        records.transition(record.id, "cancelled", allowed_from={"queued"}, event=cancel),
        *(records.append(record.id, "tool_call_progress", {"i": i}) for i in range(6)),
    )
    assert moved is not None and moved.status == "cancelled"
    written = [e for e in appended if e is not None]
    assert await records.append(record.id, "tool_call_progress", {"i": 6}) is None
    late = await records.transition(
        record.id,
        "completed",
        allowed_from={"running", "queued"},
        event=Announcement("run_completed", {"status": "completed"}, "done"),
    )
    assert late is None
    events = await records.events(record.id)
    assert [e.sequence for e in events] == list(range(len(written) + 1))
    assert [e.type for e in events][-1] == "run_cancelled"
    assert "run_completed" not in [e.type for e in events]
    # An announcement whose dedupe key is already in the log moves the status alone.
    again, _ = await records.create("chat_run", "key_a", {})
    await records.append(again.id, "run_started", {}, dedupe_key="run_started")
    started = Announcement("run_started", {}, "run_started")
    moved_again = await records.transition(
        again.id, "running", allowed_from={"queued"}, event=started
    )
    assert moved_again is not None and moved_again.status == "running"
    assert [e.type for e in await records.events(again.id)] == ["run_started"]
    seen = [await first] + [await anext(follower) for _ in range(len(written))]
    assert [e.sequence for e in seen if e is not None] == list(range(len(written) + 1))
    await follower.aclose()


async def test_unless_cancelled_stops_work_at_once_here_and_by_polling_elsewhere(
    records: RecordStore, db: Database
) -> None:
    """A cancel in this process arrives with its event; another process's cancel (a second
    store on the same database shares no memory) is seen by the store's poller."""
    loop = asyncio.get_running_loop()
    elsewhere = RecordStore(db)
    cancel = Announcement("workflow_cancelled", {"status": "cancelled"}, "terminal")
    for store, within in ((records, 0.5), (elsewhere, 1.5)):
        record, _ = await records.create("workflow", "key_a", {})
        await records.transition(record.id, "running", allowed_from={"queued"})
        work = asyncio.create_task(records.unless_cancelled(record.id, asyncio.sleep(30, "done")))
        await asyncio.sleep(0.05)
        began = loop.time()
        await store.transition(record.id, "cancelled", allowed_from={"running"}, event=cancel)
        assert await asyncio.wait_for(work, 10) is None
        assert loop.time() - began < within
    record, _ = await records.create("workflow", "key_a", {})
    assert await records.unless_cancelled(record.id, asyncio.sleep(0.01, "done")) == "done"


async def test_events_are_gap_free_under_concurrent_appends(records: RecordStore) -> None:
    record, _ = await records.create("workflow", "key_a", {})
    await asyncio.gather(*(records.append(record.id, "step_started", {"i": i}) for i in range(20)))
    events = await records.events(record.id)
    assert [e.sequence for e in events] == list(range(20))
    assert sorted(e.payload["i"] for e in events) == list(range(20))
    assert [e.sequence for e in await records.events(record.id, after=17)] == [18, 19]


async def test_dedupe_key_writes_an_event_once(records: RecordStore) -> None:
    record, _ = await records.create("workflow", "key_a", {})
    first = await records.append(
        record.id, "step_completed", {"step": "a"}, dedupe_key="a:completed"
    )
    again = await records.append(
        record.id, "step_completed", {"step": "a"}, dedupe_key="a:completed"
    )
    assert again.sequence == first.sequence == 0
    racing = await asyncio.gather(
        *(
            records.append(record.id, "step_completed", {"step": "b"}, dedupe_key="b:completed")
            for _ in range(5)
        )
    )
    assert {e.sequence for e in racing} == {1}
    assert len(await records.events(record.id)) == 2


async def test_follow_replays_then_streams_live_and_across_stores(
    records: RecordStore, db: Database
) -> None:
    record, _ = await records.create("workflow", "key_a", {})
    for i in range(3):
        await records.append(record.id, "step_started", {"i": i})
    other_process = RecordStore(db, poll_interval_s=0.05)  # no shared wake-ups: it must poll

    async def collect(store: RecordStore, after: int, count: int) -> list[int]:
        seen = []
        async for event in store.follow(record.id, after=after):
            seen.append(event.sequence)
            if len(seen) == count:
                return seen
        raise AssertionError("stream ended")

    local = asyncio.create_task(collect(records, 1, 5))
    remote = asyncio.create_task(collect(other_process, BEFORE_FIRST, 7))
    await asyncio.sleep(0.1)
    for i in range(4):
        await records.append(record.id, "step_completed", {"i": i})
        await asyncio.sleep(0.01)
    assert await asyncio.wait_for(local, 5) == [2, 3, 4, 5, 6]
    assert await asyncio.wait_for(remote, 5) == [0, 1, 2, 3, 4, 5, 6]


async def test_followers_share_live_events_and_quiet_ones_get_heartbeats(
    records: RecordStore,
) -> None:
    """Every follower in this process is handed the same event object (what is derived from
    it for them is made once); one that asked for heartbeats gets a None after `idle_s`
    without events, the others nothing."""
    record, _ = await records.create("workflow", "key_a", {})
    beating = records.follow(record.id, idle_s=0.1)
    silent = records.follow(record.id)
    beat = asyncio.create_task(anext(beating))
    waiting = asyncio.create_task(anext(silent))
    assert await asyncio.wait_for(beat, 2) is None
    assert not waiting.done()
    await records.append(record.id, "step_started", {})
    to_silent = await asyncio.wait_for(waiting, 2)
    to_beating = await asyncio.wait_for(anext(beating), 2)
    assert to_silent is not None and to_silent is to_beating
    await beating.aclose()  # type: ignore[attr-defined]
    await silent.aclose()  # type: ignore[attr-defined]


async def test_another_process_hears_of_events_and_cancels_at_once_on_postgresql(
    records: RecordStore, db: Database, database_url: str
) -> None:
    """A store on its own engine (another process) whose poll would take a minute still gets
    an appended event and a cancel at once: PostgreSQL notifies it. SQLite has no notices."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite has no notifications; other processes poll")
    elsewhere_db = Database(database_url)
    elsewhere = RecordStore(elsewhere_db, poll_interval_s=60)
    loop = asyncio.get_running_loop()
    try:
        record, _ = await records.create("workflow", "key_a", {})
        await records.transition(record.id, "running", allowed_from={"queued"})
        follower = elsewhere.follow(record.id)
        first = asyncio.create_task(anext(follower))
        work = asyncio.create_task(elsewhere.unless_cancelled(record.id, asyncio.sleep(30, "done")))
        await asyncio.sleep(0.3)  # both are listening
        began = loop.time()
        await records.append(record.id, "step_started", {})
        assert (await asyncio.wait_for(first, 5)).type == "step_started"  # type: ignore[union-attr]
        cancel = Announcement("workflow_cancelled", {"status": "cancelled"}, "terminal")
        await records.transition(record.id, "cancelled", allowed_from={"running"}, event=cancel)
        assert await asyncio.wait_for(work, 5) is None
        assert loop.time() - began < 2.0
        await follower.aclose()  # type: ignore[attr-defined]
    finally:
        await elsewhere_db.close()


async def test_a_patch_appends_its_events_in_one_commit_once(records: RecordStore) -> None:
    record, _ = await records.create("workflow", "key_a", {})
    news = [Announcement("artifact_created", {"n": 1}, "a1"), Announcement("progress", {}, "p1")]
    await records.patch(record.id, {"steps": [1]}, news)
    await records.patch(record.id, {"steps": [1, 2]}, news)  # a step repeated after a crash
    events = await records.events(record.id)
    assert [(e.sequence, e.type) for e in events] == [(0, "artifact_created"), (1, "progress")]
    assert (await records.get(record.id)).data == {"steps": [1, 2]}  # type: ignore[union-attr]


async def test_an_ended_record_takes_a_patch_but_no_more_events(records: RecordStore) -> None:
    record, _ = await records.create("workflow", "key_a", {})
    await records.transition(
        record.id,
        "cancelled",
        allowed_from={"queued"},
        event=Announcement("workflow_cancelled", {}, "terminal"),
    )
    await records.patch(record.id, {"late": True}, [Announcement("workflow_progress", {}, "p")])
    assert [e.type for e in await records.events(record.id)] == ["workflow_cancelled"]
    assert (await records.get(record.id)).data == {"late": True}  # type: ignore[union-attr]


async def test_concurrent_revisions_each_see_the_others(records: RecordStore) -> None:
    """A revision reads the record inside its own transaction, so concurrent ones never
    overwrite each other's additions (a read then a patch would lose all but one)."""
    record, _ = await records.create("workflow", "key_a", {"items": []})

    def add(n: int):  # type: ignore[no-untyped-def]
        def change(current):  # type: ignore[no-untyped-def]
            items = [*current.data["items"], n]
            return {"items": items}, [Announcement("item_added", {"n": n}, f"item:{n}")]

        return change

    await asyncio.gather(*(records.revise(record.id, add(n)) for n in range(20)))
    final = await records.get(record.id)
    assert final is not None and sorted(final.data["items"]) == list(range(20))
    events = await records.events(record.id)
    assert [e.sequence for e in events] == list(range(20))
    assert sorted(e.payload["n"] for e in events) == list(range(20))


async def test_writes_from_two_stores_on_one_database_interleave_safely(db: Database) -> None:
    """Two stores (two processes' worth of writers) appending to one record at once keep its
    log gap-free and every event once."""
    other_db = Database(db.url)
    try:
        here, there = RecordStore(db), RecordStore(other_db)
        record, _ = await here.create("workflow", "key_a", {}, status="running")
        await asyncio.gather(
            *(
                store.append(record.id, "tick", {"n": n}, dedupe_key=f"t{n % 30}")
                for n in range(60)
                for store in (here, there)
            )
        )
        events = await here.events(record.id)
        assert [e.sequence for e in events] == list(range(30))
        assert sorted(e.payload["n"] % 30 for e in events) == list(range(30))
    finally:
        await other_db.close()
