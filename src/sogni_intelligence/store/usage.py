"""Per-key usage, held to the key's limits: requests and tokens per minute, capacity units per
UTC day, and records running at once.

Counts live in the database (one row per key and window), so every replica and worker of a
deployment counts against the same limits. A key without limits costs nothing here: its
requests are never written. Windows are fixed (the current minute, the current UTC day); a
refusal says how many seconds are left in the window that refused it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sogni_intelligence.errors import RateLimited
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.keys import KeyInfo, KeyLimits, limits_in
from sogni_intelligence.store.models import DurableRecord, KeyPolicy, KeyUsage
from sogni_intelligence.store.records import TERMINAL

MINUTE = 60
DAY = 86_400
#: The wait suggested to a key at its concurrent-records limit: no window ends then, a
#: record does.
RECORD_RETRY_S = 5

_USAGE = KeyUsage.__table__
_POLICY = KeyPolicy.__table__


def _window_start(now: float, length: int) -> int:
    return int(now // length) * length


def _left(now: float, length: int) -> int:
    return math.ceil(_window_start(now, length) + length - now)


def _add(conn: Connection, key_id: str, length: int, start: int, **amounts: float) -> Any:
    """Add to a key's window (made on first use) and return the window's totals after it."""
    insert = sqlite_insert if conn.dialect.name == "sqlite" else postgres_insert
    values = {"requests": 0, "tokens": 0, "units": 0.0, **amounts}
    statement = insert(_USAGE).values(key_id=key_id, window=length, start=start, **values)
    statement = statement.on_conflict_do_update(
        index_elements=[_USAGE.c.key_id, _USAGE.c.window, _USAGE.c.start],
        set_={name: _USAGE.c[name] + statement.excluded[name] for name in amounts},
    ).returning(_USAGE.c.requests, _USAGE.c.tokens, _USAGE.c.units)
    totals = conn.execute(statement).one()
    if totals.requests + totals.tokens + totals.units == sum(values.values()):
        # A window's first use: the key's older windows of this length are done with.
        conn.execute(
            delete(_USAGE).where(
                _USAGE.c.key_id == key_id, _USAGE.c.window == length, _USAGE.c.start < start
            )
        )
    return totals


class UsageStore:
    def __init__(
        self, db: Database, cache_seconds: float = 5.0, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = db
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._limits: dict[str, tuple[float, KeyLimits]] = {}

    async def admit_request(self, key: KeyInfo) -> None:
        """Count one request against the key's requests per minute; refuse it when the
        minute's allowance is spent (a refused request is not counted)."""
        allowed = key.limits.requests_per_minute
        if allowed is None:
            return
        now = self._clock()
        start = _window_start(now, MINUTE)

        def count(conn: Connection) -> None:
            if _add(conn, key.id, MINUTE, start, requests=1).requests > allowed:
                raise RateLimited(
                    f"Rate limit reached: {allowed} requests per minute for this key.",
                    _left(now, MINUTE),
                    "requests_per_minute",
                )

        await self._db.write(count)

    async def admit_tokens(self, key: KeyInfo) -> None:
        """Refuse a request that would generate text while the key has used its tokens for
        this minute."""
        allowed = key.limits.tokens_per_minute
        if allowed is None:
            return
        now = self._clock()
        rows = await self._db.read(
            select(_USAGE.c.tokens).where(
                _USAGE.c.key_id == key.id,
                _USAGE.c.window == MINUTE,
                _USAGE.c.start == _window_start(now, MINUTE),
            )
        )
        if rows and rows[0].tokens >= allowed:
            raise RateLimited(
                f"Token rate limit reached: {allowed} tokens per minute for this key.",
                _left(now, MINUTE),
                "tokens_per_minute",
            )

    async def add_tokens(self, key_id: str, tokens: int) -> None:
        """Count the tokens a request used (prompt and completion), for a key with a token
        limit."""
        if tokens <= 0 or (await self.limits_of(key_id)).tokens_per_minute is None:
            return
        start = _window_start(self._clock(), MINUTE)
        await self._db.write(lambda conn: _add(conn, key_id, MINUTE, start, tokens=tokens))

    async def reserve_units(self, key_id: str, units: float) -> bool:
        """Take `units` from the key's budget for today, or refuse; True when something was
        taken (give it back with `refund_units` if the work does not start after all)."""
        budget = (await self.limits_of(key_id)).daily_capacity_units
        if budget is None or units <= 0:
            return False
        now = self._clock()
        start = _window_start(now, DAY)

        def take(conn: Connection) -> None:
            spent = _add(conn, key_id, DAY, start, units=units).units
            if spent > budget + 1e-9:
                raise RateLimited(
                    f"Daily capacity-unit budget reached: this needs {units:g} units and "
                    f"{max(0.0, budget - spent + units):g} of the key's {budget:g} are left today.",
                    _left(now, DAY),
                    "daily_capacity_units",
                )

        await self._db.write(take)
        return True

    async def refund_units(self, key_id: str, units: float) -> None:
        start = _window_start(self._clock(), DAY)
        await self._db.write(lambda conn: _add(conn, key_id, DAY, start, units=-units))

    async def admit_record(self, key: KeyInfo) -> None:
        """Refuse a new durable record while the key has its limit of records not yet
        finished."""
        allowed = key.limits.concurrent_records
        if allowed is None:
            return
        rows = await self._db.read(
            select(func.count()).where(
                and_(DurableRecord.owner == key.id, DurableRecord.status.not_in(TERMINAL))
            )
        )
        if rows[0][0] >= allowed:
            raise RateLimited(
                f"Concurrency limit reached: {allowed} runs or workflows at once for this key.",
                RECORD_RETRY_S,
                "concurrent_records",
            )

    async def used_today(self, key_id: str) -> dict[str, float]:
        """What the key has used in the current minute and day (for the key views)."""
        now = self._clock()
        rows = await self._db.read(
            select(_USAGE).where(
                _USAGE.c.key_id == key_id,
                or_(
                    and_(_USAGE.c.window == MINUTE, _USAGE.c.start == _window_start(now, MINUTE)),
                    and_(_USAGE.c.window == DAY, _USAGE.c.start == _window_start(now, DAY)),
                ),
            )
        )
        windows = {row.window: row for row in rows}
        minute, day = windows.get(MINUTE), windows.get(DAY)
        return {
            "requestsThisMinute": minute.requests if minute else 0,
            "tokensThisMinute": minute.tokens if minute else 0,
            "capacityUnitsToday": round(day.units, 4) if day else 0.0,
        }

    async def limits_of(self, key_id: str) -> KeyLimits:
        """The key's limits, cached briefly (runtime code knows the owner, not its key)."""
        now = time.monotonic()
        cached = self._limits.get(key_id)
        if cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        rows = await self._db.read(select(_POLICY).where(_POLICY.c.key_id == key_id))
        limits = limits_in(rows[0]) if rows else KeyLimits()
        if len(self._limits) > 10_000:
            self._limits.clear()
        self._limits[key_id] = (now, limits)
        return limits
