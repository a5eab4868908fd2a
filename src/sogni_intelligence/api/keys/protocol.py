"""Bodies and views of the key routes (admin only)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from sogni_intelligence.api.wire import MAX_DB_INT, WireModel
from sogni_intelligence.store.keys import KeyInfo, KeyLimits, Role


class LimitsBody(WireModel):
    """Per-key limits; a missing field is left as it is, null lifts the limit."""

    requests_per_minute: int | None = Field(None, ge=1, le=MAX_DB_INT)
    tokens_per_minute: int | None = Field(None, ge=1, le=MAX_DB_INT)
    concurrent_records: int | None = Field(None, ge=1, le=MAX_DB_INT)
    daily_capacity_units: float | None = Field(None, ge=0, le=1e12)

    def changes(self) -> dict[str, int | float | None]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class CreateKeyBody(WireModel):
    name: str = Field("", max_length=128)
    role: Role = "user"
    limits: LimitsBody | None = None


class UpdateKeyBody(WireModel):
    name: str | None = Field(None, max_length=128)
    role: Role | None = None
    limits: LimitsBody | None = None


def limits_view(limits: KeyLimits) -> dict[str, Any]:
    return {
        "requestsPerMinute": limits.requests_per_minute,
        "tokensPerMinute": limits.tokens_per_minute,
        "concurrentRecords": limits.concurrent_records,
        "dailyCapacityUnits": limits.daily_capacity_units,
    }


def key_view(info: KeyInfo, usage: dict[str, float] | None = None) -> dict[str, Any]:
    """A key as the API shows it: never its secret."""
    view: dict[str, Any] = {
        "id": info.id,
        "name": info.name,
        "prefix": info.prefix,
        "role": info.role,
        "createdAt": info.created_at.isoformat(),
        "revokedAt": info.revoked_at.isoformat() if info.revoked_at else None,
        "limits": limits_view(info.limits),
    }
    if usage is not None:
        view["usage"] = usage
    return view
