"""Saved responses of the Responses API, per key: what `GET /v1/responses/{id}` and a later
request's `previous_response_id` read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete

from sogni_intelligence.store.db import Database
from sogni_intelligence.store.models import SavedResponse


@dataclass(frozen=True)
class Saved:
    id: str
    owner: str
    #: The chat run a background response runs as; None for one answered in the request.
    run_id: str | None
    #: `response` (the object, or a background one's fixed fields), `input` (the request's own
    #: items) and `context` (the items of the conversation it continued).
    data: dict[str, Any]


class ResponseStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, saved: Saved) -> None:
        """Write or overwrite a response (a background one is written when it starts)."""
        async with self._db.transaction() as session:
            await session.merge(
                SavedResponse(id=saved.id, owner=saved.owner, run_id=saved.run_id, data=saved.data)
            )

    async def get(self, owner: str, response_id: str) -> Saved | None:
        """The response if `owner` saved it; another key's response is not found."""
        async with self._db.session() as session:
            row = await session.get(SavedResponse, response_id)
        if row is None or row.owner != owner:
            return None
        return Saved(row.id, row.owner, row.run_id, dict(row.data or {}))

    async def delete(self, owner: str, response_id: str) -> bool:
        async with self._db.transaction() as session:
            result = await session.execute(
                delete(SavedResponse).where(
                    SavedResponse.id == response_id, SavedResponse.owner == owner
                )
            )
        return bool(getattr(result, "rowcount", 0))
