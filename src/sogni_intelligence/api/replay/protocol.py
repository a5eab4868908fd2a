"""The body and views of `/v1/replay/records`: a RunRecord in, bare JSON out (the SDKs read
these routes without the `data` envelope)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from sogni_intelligence.api.wire import WireModel
from sogni_intelligence.store.replays import StoredReplay


class RunRecordBody(WireModel):
    """A RunRecord: `run_id` and any other fields, kept as sent (the known ones are read in
    either spelling and stored under their snake_case names)."""

    model_config = ConfigDict(extra="allow")

    run_id: str = Field(min_length=1, max_length=128)
    schema_version: int | str | None = None
    session_id: str | None = None
    account_id: str | None = None
    model_id: str | None = None
    user_request: str | None = None
    final_response: Any = None
    rounds: list[Any] | None = None

    def normalised(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


def millis(stored: StoredReplay) -> tuple[int, int]:
    return int(stored.created_at.timestamp() * 1000), int(stored.updated_at.timestamp() * 1000)


def _identity(stored: StoredReplay) -> dict[str, Any]:
    created, updated = millis(stored)
    return {
        "runId": stored.run_id,
        "schemaVersion": _version(stored.schema_version),
        "createTime": created,
        "updateTime": updated,
    }


def written_view(stored: StoredReplay) -> dict[str, Any]:
    """What a write answers: the record is always stored redacted."""
    return {**_identity(stored), "redacted": True}


def summary_view(stored: StoredReplay) -> dict[str, Any]:
    return {
        **_identity(stored),
        "userRequest": stored.user_request,
        "finalResponse": stored.record.get("final_response"),
        "modelId": stored.model_id,
        "rounds": stored.rounds,
    }


def _version(text: str) -> int | str:
    """Numbers stay numbers, as the client sent them."""
    return int(text) if text.isdigit() else text
