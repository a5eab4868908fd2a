"""API keys: create, list, revoke and check. Keys are random; only their digest is stored."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from sogni_intelligence.store.db import Database
from sogni_intelligence.store.models import ApiKey, utcnow

KEY_PREFIX = "sk-sogni-"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class KeyInfo:
    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def fingerprint(self) -> str:
        return f"{self.prefix}…"


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every time we store is UTC.
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _info(row: ApiKey) -> KeyInfo:
    created = _aware(row.created_at)
    assert created is not None
    return KeyInfo(row.id, row.name, row.prefix, created, _aware(row.revoked_at))


class KeyStore:
    def __init__(self, db: Database, cache_seconds: float = 5.0) -> None:
        self._db = db
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, KeyInfo | None]] = {}

    async def create(self, name: str = "") -> tuple[str, KeyInfo]:
        """Return the new key in clear (shown once) and its stored record."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(
            id="key_" + secrets.token_hex(8),
            name=name,
            digest=digest(key),
            prefix=key[: len(KEY_PREFIX) + 4],
            created_at=utcnow(),
        )
        async with self._db.transaction() as session:
            session.add(row)
        return key, _info(row)

    async def list(self) -> list[KeyInfo]:
        async with self._db.session() as session:
            rows = (await session.scalars(select(ApiKey).order_by(ApiKey.created_at))).all()
        return [_info(row) for row in rows]

    async def count_active(self) -> int:
        return sum(1 for info in await self.list() if info.revoked_at is None)

    async def revoke(self, key_id: str) -> bool:
        async with self._db.transaction() as session:
            row = await session.get(ApiKey, key_id)
            if row is None or row.revoked_at is not None:
                return False
            row.revoked_at = utcnow()
        self._cache.clear()
        return True

    async def check(self, key: str) -> KeyInfo | None:
        """The active key's record, or None. Results are cached briefly to keep auth off the
        hot path; a revocation from another process takes effect within `cache_seconds`."""
        key_digest = digest(key)
        now = time.monotonic()
        cached = self._cache.get(key_digest)
        if cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        async with self._db.session() as session:
            row = await session.scalar(select(ApiKey).where(ApiKey.digest == key_digest))
        info = _info(row) if row is not None and row.revoked_at is None else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key_digest] = (now, info)
        return info
