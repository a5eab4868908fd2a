"""Personal LoRAs: files a key imported from a URL for one image model, each key its own."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select

from sogni_intelligence.store.db import Database
from sogni_intelligence.store.events import aware
from sogni_intelligence.store.models import PersonalLora, utcnow

#: Personal LoRA ids start like this (the SDK tells them from catalog ids by it).
PERSONAL_PREFIX = "personal-"
_PERSONAL_ID = re.compile(r"personal-[0-9a-f]{24}")


def is_personal_id(value: str) -> bool:
    """Whether `value` has the shape of a personal LoRA id (only those are looked up)."""
    return _PERSONAL_ID.fullmatch(value) is not None


class LoraLibraryFull(Exception):
    """The key already keeps as many personal LoRAs as it may."""


@dataclass(frozen=True)
class StoredLora:
    id: str
    owner: str
    name: str
    model_id: str
    source_url: str
    asset_id: str
    created_at: datetime


@dataclass(frozen=True)
class NewLora:
    name: str
    model_id: str
    source_url: str
    asset_id: str


def _stored(row: PersonalLora) -> StoredLora:
    return StoredLora(
        row.id,
        row.owner,
        row.name,
        row.model_id,
        row.source_url,
        row.asset_id,
        aware(row.created_at),
    )


class PersonalLoraStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, owner: str, lora: NewLora, limit: int) -> StoredLora:
        """Keep a fetched LoRA; LoraLibraryFull when the key already keeps `limit`."""
        async with self._db.transaction() as session:
            kept = await session.scalar(
                select(func.count()).select_from(PersonalLora).where(PersonalLora.owner == owner)
            )
            if (kept or 0) >= limit:
                raise LoraLibraryFull
            row = PersonalLora(
                id=PERSONAL_PREFIX + secrets.token_hex(12),
                owner=owner,
                name=lora.name,
                model_id=lora.model_id,
                source_url=lora.source_url,
                asset_id=lora.asset_id,
                created_at=utcnow(),
            )
            session.add(row)
        return _stored(row)

    async def get(self, owner: str, lora_id: str) -> StoredLora | None:
        """The key's LoRA; None for an unknown id or another key's."""
        async with self._db.session() as session:
            row = await session.get(PersonalLora, lora_id)
        return None if row is None or row.owner != owner else _stored(row)

    async def count(self, owner: str) -> int:
        async with self._db.session() as session:
            kept = await session.scalar(
                select(func.count()).select_from(PersonalLora).where(PersonalLora.owner == owner)
            )
        return int(kept or 0)

    async def list(self, owner: str) -> list[StoredLora]:
        async with self._db.session() as session:
            rows = await session.scalars(
                select(PersonalLora)
                .where(PersonalLora.owner == owner)
                .order_by(PersonalLora.created_at.desc(), PersonalLora.id)
            )
            return [_stored(row) for row in rows]

    async def delete(self, owner: str, lora_id: str) -> bool:
        async with self._db.transaction() as session:
            result = await session.execute(
                delete(PersonalLora).where(
                    (PersonalLora.id == lora_id) & (PersonalLora.owner == owner)
                )
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]
