"""Upload slots: the presigned upload URLs a key asked for, keyed the way the client later asks
for the matching download URL (job, slot type, image id). A new URL for the same key replaces
the slot, so a stale URL stops working."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from sogni_intelligence.store.db import Database
from sogni_intelligence.store.models import UploadSlot


@dataclass(frozen=True)
class SlotKey:
    owner: str
    job_id: str
    slot_type: str
    image_id: str


@dataclass(frozen=True)
class Slot:
    id: str
    owner: str
    job_id: str
    slot_type: str


class UploadSlotStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def replace(self, key: SlotKey, kind: str) -> str:
        """A fresh slot for `key` (the old one, if any, is gone); its id names the media kind."""
        match = (
            (UploadSlot.owner == key.owner)
            & (UploadSlot.job_id == key.job_id)
            & (UploadSlot.slot_type == key.slot_type)
            & (UploadSlot.image_id == key.image_id)
        )
        slot_id = f"upl_{kind}_{secrets.token_hex(12)}"
        for attempt in range(3):
            try:
                async with self.db.transaction() as session:
                    await session.execute(delete(UploadSlot).where(match))
                    session.add(
                        UploadSlot(
                            id=slot_id,
                            owner=key.owner,
                            job_id=key.job_id,
                            slot_type=key.slot_type,
                            image_id=key.image_id,
                        )
                    )
                break
            except IntegrityError:  # a concurrent request for the same slot won the race
                if attempt == 2:
                    raise
        return slot_id

    async def get(self, slot_id: str) -> Slot | None:
        async with self.db.session() as session:
            row = await session.get(UploadSlot, slot_id)
        if row is None:
            return None
        return Slot(row.id, row.owner, row.job_id, row.slot_type)

    async def attach(self, slot_id: str, asset_id: str) -> None:
        """Record what was uploaded to the slot."""
        async with self.db.transaction() as session:
            await session.execute(
                update(UploadSlot).where(UploadSlot.id == slot_id).values(asset_id=asset_id)
            )

    async def latest_upload(
        self, owner: str, job_id: str, slot_type: str, image_id: str | None
    ) -> str | None:
        """The asset id last uploaded to a matching slot (any image id when none is given)."""
        condition = (
            (UploadSlot.owner == owner)
            & (UploadSlot.job_id == job_id)
            & (UploadSlot.slot_type == slot_type)
            & UploadSlot.asset_id.is_not(None)
        )
        if image_id:
            condition = condition & (UploadSlot.image_id == image_id)
        async with self.db.session() as session:
            return await session.scalar(
                select(UploadSlot.asset_id)
                .where(condition)
                .order_by(UploadSlot.created_at.desc())
                .limit(1)
            )
