"""Replay records on SQLite and PostgreSQL: one per owner and run id, newest first."""

from collections.abc import AsyncIterator

import pytest

from sogni_intelligence.store.db import Database
from sogni_intelligence.store.replays import ReplayStore


@pytest.fixture
async def replays(database_url: str) -> AsyncIterator[ReplayStore]:
    db = Database(database_url)
    await db.create_all()
    yield ReplayStore(db)
    await db.close()


async def test_a_rewrite_keeps_its_creation_and_owners_stay_apart(replays: ReplayStore) -> None:
    first = await replays.put("key_a", {"run_id": "r1", "rounds": [1], "model_id": "m"})
    again = await replays.put("key_a", {"run_id": "r1", "rounds": [1, 2], "schema_version": 2})
    assert again.created_at == first.created_at and again.updated_at >= first.updated_at
    assert again.rounds == 2 and again.schema_version == "2" and again.model_id is None
    await replays.put("key_b", {"run_id": "r1", "user_request": "b's own"})
    mine = await replays.get("key_a", "r1")
    assert mine is not None and mine.record["rounds"] == [1, 2]
    theirs = await replays.get("key_b", "r1")
    assert theirs is not None and theirs.user_request == "b's own"
    assert await replays.get("key_c", "r1") is None


async def test_list_is_newest_first_and_limited(replays: ReplayStore) -> None:
    for n in range(3):
        await replays.put("key_list", {"run_id": f"run-{n}"})
    await replays.put("key_list", {"run_id": "run-0", "rounds": []})  # written again: newest
    listed = await replays.list("key_list", 2)
    assert [r.run_id for r in listed] == ["run-0", "run-2"]
