"""Per-key usage against limits, on SQLite and PostgreSQL, with a clock the test moves."""

from collections.abc import AsyncIterator

import pytest

from sogni_intelligence.errors import RateLimited
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.keys import KeyInfo, KeyLimits, KeyStore
from sogni_intelligence.store.records import RecordStore
from sogni_intelligence.store.usage import DAY, UsageStore


class Clock:
    def __init__(self) -> None:
        self.now = 20_834 * 86_400.0  # the start of a UTC day (and of a minute)

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.create_all()
    yield database
    await database.close()


async def _key(db: Database, **limits: float) -> KeyInfo:
    _, info = await KeyStore(db).create("limited", limits=KeyLimits(**limits))  # type: ignore[arg-type]
    return info


async def test_requests_per_minute_refuse_with_the_wait_and_reset_next_minute(
    db: Database,
) -> None:
    clock = Clock()
    usage = UsageStore(db, clock=clock)
    key = await _key(db, requests_per_minute=2)
    clock.now += 15
    await usage.admit_request(key)
    await usage.admit_request(key)
    with pytest.raises(RateLimited) as refused:
        await usage.admit_request(key)
    assert refused.value.status == 429 and refused.value.retry_after == 45
    assert refused.value.code == "requests_per_minute"
    assert (await usage.used_today(key.id))["requestsThisMinute"] == 2  # refusals not counted
    clock.now += 45
    await usage.admit_request(key)
    assert (await usage.used_today(key.id))["requestsThisMinute"] == 1


async def test_a_key_without_limits_is_never_counted(db: Database) -> None:
    usage = UsageStore(db, clock=Clock())
    key = await _key(db)
    for _ in range(3):
        await usage.admit_request(key)
    await usage.add_tokens(key.id, 500)
    assert await usage.reserve_units(key.id, 5.0) is False
    assert await usage.used_today(key.id) == {
        "requestsThisMinute": 0,
        "tokensThisMinute": 0,
        "capacityUnitsToday": 0.0,
    }


async def test_tokens_per_minute_refuse_once_spent(db: Database) -> None:
    clock = Clock()
    usage = UsageStore(db, clock=clock)
    key = await _key(db, tokens_per_minute=100)
    await usage.admit_tokens(key)
    await usage.add_tokens(key.id, 60)
    await usage.admit_tokens(key)
    await usage.add_tokens(key.id, 60)
    with pytest.raises(RateLimited) as refused:
        await usage.admit_tokens(key)
    assert refused.value.retry_after == 60 and refused.value.code == "tokens_per_minute"
    clock.now += 60
    await usage.admit_tokens(key)


async def test_daily_units_are_reserved_refused_and_refunded(db: Database) -> None:
    clock = Clock()
    usage = UsageStore(db, clock=clock)
    key = await _key(db, daily_capacity_units=10.0)
    assert await usage.reserve_units(key.id, 6.0) is True
    with pytest.raises(RateLimited) as refused:
        await usage.reserve_units(key.id, 5.0)
    assert refused.value.code == "daily_capacity_units"
    assert refused.value.retry_after == DAY
    assert "4 of the key's 10 are left" in refused.value.message
    await usage.refund_units(key.id, 6.0)
    assert await usage.reserve_units(key.id, 10.0) is True
    clock.now += DAY
    assert await usage.reserve_units(key.id, 10.0) is True


async def test_concurrent_records_count_unfinished_records(db: Database) -> None:
    usage = UsageStore(db)
    key = await _key(db, concurrent_records=1)
    await usage.admit_record(key)
    records = RecordStore(db)
    record, _ = await records.create("workflow", key.id, {}, status="running")
    with pytest.raises(RateLimited) as refused:
        await usage.admit_record(key)
    assert refused.value.code == "concurrent_records"
    await records.transition(record.id, "completed", allowed_from={"running"})
    await usage.admit_record(key)
