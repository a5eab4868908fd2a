"""Replay records: RunRecords kept per owner, newest first, for replay viewers and audits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from sogni_intelligence.store.db import Database
from sogni_intelligence.store.events import aware
from sogni_intelligence.store.models import ReplayRecord, utcnow


@dataclass(frozen=True)
class StoredReplay:
    run_id: str
    schema_version: str
    model_id: str | None
    user_request: str | None
    rounds: int
    record: dict[str, Any]
    created_at: datetime
    updated_at: datetime


def _stored(row: ReplayRecord) -> StoredReplay:
    return StoredReplay(
        row.run_id,
        row.schema_version,
        row.model_id,
        row.user_request,
        row.rounds,
        row.record,
        aware(row.created_at),
        aware(row.updated_at),
    )


class ReplayStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, owner: str, record: dict[str, Any]) -> StoredReplay:
        """Write (or overwrite) the owner's record of `record["run_id"]`; a rewrite keeps
        its creation time."""
        rounds = record.get("rounds")
        request = record.get("user_request")
        model = record.get("model_id")
        async with self._db.transaction() as session:
            row = await session.get(ReplayRecord, (owner, record["run_id"]))
            if row is None:
                row = ReplayRecord(owner=owner, run_id=record["run_id"], created_at=utcnow())
                session.add(row)
            row.schema_version = str(record.get("schema_version", 1))[:32]
            row.model_id = model[:128] if isinstance(model, str) else None
            row.user_request = request[:4096] if isinstance(request, str) else None
            row.rounds = len(rounds) if isinstance(rounds, list) else 0
            row.record = record
            row.updated_at = utcnow()
        return _stored(row)

    async def get(self, owner: str, run_id: str) -> StoredReplay | None:
        async with self._db.session() as session:
            row = await session.get(ReplayRecord, (owner, run_id))
        return None if row is None else _stored(row)

    async def list(self, owner: str, limit: int) -> list[StoredReplay]:
        async with self._db.session() as session:
            rows = await session.scalars(
                select(ReplayRecord)
                .where(ReplayRecord.owner == owner)
                .order_by(ReplayRecord.updated_at.desc(), ReplayRecord.run_id)
                .limit(limit)
            )
            return [_stored(row) for row in rows]
