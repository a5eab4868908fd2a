"""Saved uploads (`/v1/assets`): one row per upload a key declared, from `pending` (declared,
waiting for its bytes) through `uploaded` (bytes stored, not yet checked against the
declaration) to `ready` (reusable). Each key sees only its own; listing is newest first."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import delete, func, select, tuple_, update

from sogni_intelligence.store.db import Database
from sogni_intelligence.store.events import aware
from sogni_intelligence.store.models import SavedAsset, utcnow

SavedState = Literal["pending", "uploaded", "ready"]


class LibraryFull(Exception):
    """The key already keeps as many saved uploads as it may."""


@dataclass(frozen=True)
class SavedUpload:
    id: str
    owner: str
    name: str
    content_type: str
    size_bytes: int
    sha256: str | None
    state: SavedState
    asset_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class Declared:
    """What `prepare` says the upload will be."""

    name: str
    content_type: str
    size_bytes: int
    sha256: str | None


def _saved(row: SavedAsset) -> SavedUpload:
    return SavedUpload(
        row.id,
        row.owner,
        row.name,
        row.content_type,
        row.size_bytes,
        row.sha256,
        row.state,  # type: ignore[arg-type]
        row.asset_id,
        aware(row.created_at),
    )


class SavedAssetStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def declare(self, owner: str, declared: Declared, limit: int) -> SavedUpload:
        """A new pending upload; LibraryFull when the key already keeps `limit` of them."""
        async with self._db.transaction() as session:
            kept = await session.scalar(
                select(func.count()).select_from(SavedAsset).where(SavedAsset.owner == owner)
            )
            if (kept or 0) >= limit:
                raise LibraryFull
            row = SavedAsset(
                id="sav_" + secrets.token_hex(12),
                owner=owner,
                name=declared.name,
                content_type=declared.content_type,
                size_bytes=declared.size_bytes,
                sha256=declared.sha256,
                state="pending",
                created_at=utcnow(),
            )
            session.add(row)
        return _saved(row)

    async def find_ready(self, owner: str, sha256: str, content_type: str) -> SavedUpload | None:
        """The key's ready upload of these exact bytes, if it has one (no second copy)."""
        async with self._db.session() as session:
            row = await session.scalar(
                select(SavedAsset)
                .where(
                    (SavedAsset.owner == owner)
                    & (SavedAsset.sha256 == sha256)
                    & (SavedAsset.content_type == content_type)
                    & (SavedAsset.state == "ready")
                )
                .limit(1)
            )
        return None if row is None else _saved(row)

    async def get(self, saved_id: str, owner: str | None = None) -> SavedUpload | None:
        """The upload, or None when it does not exist or (with `owner`) is another key's."""
        async with self._db.session() as session:
            row = await session.get(SavedAsset, saved_id)
        if row is None or (owner is not None and row.owner != owner):
            return None
        return _saved(row)

    async def page(self, owner: str, limit: int, after: str | None) -> list[SavedUpload]:
        """Up to `limit` of the key's uploads, newest first, after the one with id `after`."""
        query = select(SavedAsset).where(SavedAsset.owner == owner)
        async with self._db.session() as session:
            if after is not None:
                anchor = await session.get(SavedAsset, after)
                if anchor is None or anchor.owner != owner:
                    return []
                # The stored value itself, so SQLite compares like with like.
                query = query.where(
                    tuple_(SavedAsset.created_at, SavedAsset.id) < (anchor.created_at, anchor.id)
                )
            query = query.order_by(SavedAsset.created_at.desc(), SavedAsset.id.desc())
            return [_saved(row) for row in await session.scalars(query.limit(limit))]

    async def count(self, owner: str) -> int:
        async with self._db.session() as session:
            kept = await session.scalar(
                select(func.count()).select_from(SavedAsset).where(SavedAsset.owner == owner)
            )
        return int(kept or 0)

    async def _move(self, saved_id: str, source: SavedState, **values: object) -> bool:
        """Set `values` if the upload is still in `source`; whether it was (write once)."""
        async with self._db.transaction() as session:
            result = await session.execute(
                update(SavedAsset)
                .where((SavedAsset.id == saved_id) & (SavedAsset.state == source))
                .values(**values)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def attach(self, saved_id: str, asset_id: str) -> bool:
        """Record the stored bytes of a pending upload; False when it already has them."""
        return await self._move(saved_id, "pending", state="uploaded", asset_id=asset_id)

    async def mark_ready(self, saved_id: str) -> bool:
        return await self._move(saved_id, "uploaded", state="ready")

    async def reject(self, saved_id: str) -> bool:
        """Forget bytes that did not match the declaration, so the upload can be sent again."""
        return await self._move(saved_id, "uploaded", state="pending", asset_id=None)

    async def delete(self, saved_id: str, owner: str) -> bool:
        async with self._db.transaction() as session:
            result = await session.execute(
                delete(SavedAsset).where((SavedAsset.id == saved_id) & (SavedAsset.owner == owner))
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]
