import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import delete, event

from sogni_intelligence.store.db import Database
from sogni_intelligence.store.keys import KEY_PREFIX, KeyLimits, KeyStore, digest
from sogni_intelligence.store.models import ApiKey, KeyPolicy


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[KeyStore]:
    db = Database(database_url)
    await db.create_all()
    async with db.session() as session, session.begin():
        await session.execute(delete(ApiKey))
    yield KeyStore(db, cache_seconds=0)
    await db.close()


async def test_created_key_checks_and_only_its_digest_is_stored(store: KeyStore) -> None:
    key, info = await store.create("ci")
    assert key.startswith(KEY_PREFIX) and len(key) > 40
    checked = await store.check(key)
    assert checked is not None and checked.id == info.id and checked.name == "ci"
    assert checked.created_at.tzinfo is not None
    async with store._db.session() as session:
        row = await session.get(ApiKey, info.id)
    assert row is not None and row.digest == digest(key) and key not in (row.prefix, row.digest)


async def test_unknown_and_revoked_keys_fail(store: KeyStore) -> None:
    key, info = await store.create()
    assert await store.check(KEY_PREFIX + "wrong") is None
    assert await store.revoke(info.id) is True
    assert await store.revoke(info.id) is False
    assert await store.check(key) is None
    assert [k.revoked_at is not None for k in await store.list()] == [True]
    assert await store.count_active() == 0


async def test_cache_keeps_a_revoked_key_only_for_its_window(database_url: str) -> None:
    db = Database(database_url)
    await db.create_all()
    cached = KeyStore(db, cache_seconds=60)
    other_process = KeyStore(db, cache_seconds=0)
    key, info = await cached.create()
    assert await cached.check(key) is not None
    await other_process.revoke(info.id)
    assert await cached.check(key) is not None  # still within the window
    assert await KeyStore(db, cache_seconds=0).check(key) is None
    await db.close()


async def test_roles_and_limits_are_kept_and_changed(store: KeyStore) -> None:
    key, info = await store.create("ops", "admin", KeyLimits(requests_per_minute=60))
    assert info.is_admin and info.limits == KeyLimits(requests_per_minute=60)
    checked = await store.check(key)
    assert checked is not None and checked.role == "admin" and checked.limits.any
    changed = await store.update(
        info.id, "user", {"requests_per_minute": None, "daily_capacity_units": 2.5}, name="ops2"
    )
    assert changed is not None and changed.role == "user" and changed.name == "ops2"
    assert changed.limits == KeyLimits(daily_capacity_units=2.5)
    assert await store.get(info.id) == changed
    assert await store.update("key_missing", "admin") is None
    with pytest.raises(ValueError, match="unknown limits"):
        await store.update(info.id, limits={"bogus": 1})


async def test_a_key_made_before_roles_is_a_user_without_limits(store: KeyStore) -> None:
    """Databases made before key policies existed have keys without a policy row."""
    key, info = await store.create("old")
    async with store._db.session() as session, session.begin():
        await session.execute(delete(KeyPolicy).where(KeyPolicy.key_id == info.id))
    checked = await store.check(key)
    assert checked is not None and checked.role == "user" and not checked.limits.any
    promoted = await store.update(info.id, "admin")
    assert promoted is not None and promoted.is_admin


def _key_reads(db: Database) -> list[str]:
    """Every statement that reads the key table, as the database receives it."""
    reads: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "api_keys" in statement:
            reads.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    return reads


@pytest.fixture
async def caching(database_url: str) -> AsyncIterator[KeyStore]:
    """A store that keeps checked keys for a minute, as a server does for a few seconds."""
    db = Database(database_url)
    await db.create_all()
    yield KeyStore(db, cache_seconds=60)
    await db.close()


async def test_requests_arriving_together_share_one_lookup(caching: KeyStore) -> None:
    store = caching
    key, info = await store.create("burst")
    reads = _key_reads(store._db)
    checked = await asyncio.gather(*(store.check(key) for _ in range(8)))
    assert [c.id if c else None for c in checked] == [info.id] * 8
    assert len(reads) == 1
    assert await store.check(key) is not None and len(reads) == 1  # from the cache now


async def test_a_caller_that_goes_away_leaves_the_lookup_to_the_others(caching: KeyStore) -> None:
    store = caching
    key, info = await store.create()
    leaving, staying = (asyncio.create_task(store.check(key)) for _ in range(2))
    await asyncio.sleep(0)
    leaving.cancel()
    checked = await staying
    assert checked is not None and checked.id == info.id and leaving.cancelled()


async def test_a_lookup_begun_before_a_revocation_is_not_reused_or_cached(
    caching: KeyStore,
) -> None:
    store = caching
    key, info = await store.create()
    before = asyncio.create_task(store.check(key))
    await asyncio.sleep(0)  # its lookup has begun
    assert await store.revoke(info.id) is True
    assert await store.check(key) is None
    await before  # whatever it saw, it is not what later callers get
    assert await store.check(key) is None
