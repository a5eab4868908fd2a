"""API keys: create, list, revoke and check, with each key's role and limits. Keys are random;
only their digest is stored."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Row, select

from sogni_intelligence.store.db import Database
from sogni_intelligence.store.events import aware
from sogni_intelligence.store.models import ApiKey, KeyPolicy, utcnow

KEY_PREFIX = "sk-sogni-"
Role = Literal["admin", "user"]


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def fingerprint_of(key_id: str) -> str:
    """The key's public fingerprint (`apiKeyFingerprint` on the account and on records): a short
    digest of its id, stable for the key's life and holding no part of the secret."""
    return "kf_" + hashlib.sha256(f"sogni-key:{key_id}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class KeyLimits:
    """Per-key limits; None is no limit."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    concurrent_records: int | None = None
    daily_capacity_units: float | None = None

    @property
    def any(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))


@dataclass(frozen=True)
class KeyInfo:
    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    role: Role = "user"
    limits: KeyLimits = field(default_factory=KeyLimits)

    @property
    def fingerprint(self) -> str:
        return f"{self.prefix}…"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


LIMIT_NAMES = frozenset(f.name for f in fields(KeyLimits))


def _aware(moment: datetime | None) -> datetime | None:
    return None if moment is None else aware(moment)


def _info(row: ApiKey, policy: KeyPolicy | None) -> KeyInfo:
    created = _aware(row.created_at)
    assert created is not None
    info = KeyInfo(row.id, row.name, row.prefix, created, _aware(row.revoked_at))
    if policy is None:
        return info
    role: Role = "admin" if policy.role == "admin" else "user"
    return replace(info, role=role, limits=limits_in(policy))


def limits_in(policy: Any) -> KeyLimits:
    """The limits of a `key_policies` row (an ORM object or a Core row)."""
    return KeyLimits(**{name: getattr(policy, name) for name in LIMIT_NAMES})


def _with_policy(row: Row[Any]) -> KeyInfo:
    return _info(row[0], row[1])


_KEYS = select(ApiKey, KeyPolicy).outerjoin(KeyPolicy, KeyPolicy.key_id == ApiKey.id)


class KeyStore:
    def __init__(self, db: Database, cache_seconds: float = 5.0) -> None:
        self._db = db
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, KeyInfo | None]] = {}
        self._lookups: dict[str, asyncio.Task[KeyInfo | None]] = {}

    async def create(
        self, name: str = "", role: Role = "user", limits: KeyLimits | None = None
    ) -> tuple[str, KeyInfo]:
        """Return the new key in clear (shown once) and its stored record."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(
            id="key_" + secrets.token_hex(8),
            name=name,
            digest=digest(key),
            prefix=key[: len(KEY_PREFIX) + 4],
            created_at=utcnow(),
        )
        policy = _policy(row.id, role, limits or KeyLimits())
        async with self._db.transaction() as session:
            session.add(row)
            session.add(policy)
        return key, _info(row, policy)

    async def list(self) -> list[KeyInfo]:
        async with self._db.session() as session:
            rows = (await session.execute(_KEYS.order_by(ApiKey.created_at))).all()
        return [_with_policy(row) for row in rows]

    async def get(self, key_id: str) -> KeyInfo | None:
        async with self._db.session() as session:
            row = (await session.execute(_KEYS.where(ApiKey.id == key_id))).first()
        return None if row is None else _with_policy(row)

    async def count_active(self) -> int:
        return sum(1 for info in await self.list() if info.revoked_at is None)

    async def update(
        self,
        key_id: str,
        role: Role | None = None,
        limits: Mapping[str, int | float | None] | None = None,
        name: str | None = None,
    ) -> KeyInfo | None:
        """Change a key's name, role and the limits named in `limits` (by `KeyLimits` field
        name; a None value lifts that limit); None when there is no such key."""
        unknown = set(limits or {}) - LIMIT_NAMES
        if unknown:
            raise ValueError(f"unknown limits: {sorted(unknown)}")
        async with self._db.transaction() as session:
            row = await session.get(ApiKey, key_id)
            if row is None:
                return None
            if name is not None:
                row.name = name
            policy = await session.get(KeyPolicy, key_id)
            if policy is None:
                policy = _policy(key_id, "user", KeyLimits())
                session.add(policy)
            if role is not None:
                policy.role = role
            for name, value in (limits or {}).items():
                setattr(policy, name, value)
            info = _info(row, policy)
        self._forget()
        return info

    async def revoke(self, key_id: str) -> bool:
        async with self._db.transaction() as session:
            row = await session.get(ApiKey, key_id)
            if row is None or row.revoked_at is not None:
                return False
            row.revoked_at = utcnow()
        self._forget()
        return True

    def _forget(self) -> None:
        """After a change here: no cached record, and no lookup begun before it is shared."""
        self._cache.clear()
        self._lookups.clear()

    async def check(self, key: str) -> KeyInfo | None:
        """The active key's record, or None. Results are cached briefly to keep auth off the
        hot path; a revocation or a new limit from another process takes effect within
        `cache_seconds`. Requests that arrive together while their key is not cached share
        one lookup, so a burst of them reaches its handler together instead of one database
        read after another."""
        key_digest = digest(key)
        cached = self._cache.get(key_digest)
        if cached is not None and time.monotonic() - cached[0] < self._cache_seconds:
            return cached[1]
        lookup = self._lookups.get(key_digest)
        if lookup is None:
            lookup = asyncio.create_task(self._look_up(key_digest))
            self._lookups[key_digest] = lookup
            lookup.add_done_callback(lambda done: self._lookup_done(key_digest, done))
        # A caller that goes away leaves the lookup to the others (and to the cache).
        return await asyncio.shield(lookup)

    async def _look_up(self, key_digest: str) -> KeyInfo | None:
        now = time.monotonic()
        async with self._db.session() as session:
            row = (await session.execute(_KEYS.where(ApiKey.digest == key_digest))).first()
        info = _with_policy(row) if row is not None and row[0].revoked_at is None else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        if self._lookups.get(key_digest) is asyncio.current_task():  # not forgotten meanwhile
            self._cache[key_digest] = (now, info)
        return info

    def _lookup_done(self, key_digest: str, lookup: asyncio.Task[KeyInfo | None]) -> None:
        if self._lookups.get(key_digest) is lookup:
            del self._lookups[key_digest]
        if not lookup.cancelled():
            lookup.exception()  # seen here when every caller had gone: not an unread error


def _policy(key_id: str, role: Role, limits: KeyLimits) -> KeyPolicy:
    return KeyPolicy(
        key_id=key_id,
        role=role,
        requests_per_minute=limits.requests_per_minute,
        tokens_per_minute=limits.tokens_per_minute,
        concurrent_records=limits.concurrent_records,
        daily_capacity_units=limits.daily_capacity_units,
    )
