"""The value types of a record's event log: an event to write and an event written."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back without a zone; every time stored is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Announcement:
    """An event to append together with a status change."""

    type: str
    payload: dict[str, Any]
    dedupe_key: str | None = None


@dataclass(frozen=True)
class Event:
    """An appended event. The same object reaches every follower in this process, so forms
    derived from it for them (an encoded stream frame) are made once and kept in `memo`."""

    record_id: str
    sequence: int
    type: str
    at: datetime
    payload: dict[str, Any]
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def public(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "type": self.type,
            "at": aware(self.at).isoformat(),
            "payload": self.payload,
        }
