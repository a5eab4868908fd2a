"""The body and views of `/v1/replay/records`: a RunRecord in, bare JSON out (the SDKs read
these routes without the `data` envelope)."""

from __future__ import annotations

from typing import Any

from pydantic import RootModel

from sogni_intelligence.store.replays import StoredReplay

#: camelCase spellings a client may use for the RunRecord's top-level fields.
_SNAKE = {
    "runId": "run_id",
    "schemaVersion": "schema_version",
    "sessionId": "session_id",
    "accountId": "account_id",
    "modelId": "model_id",
    "userRequest": "user_request",
    "finalResponse": "final_response",
}


class RunRecordBody(RootModel[dict[str, Any]]):
    """Any JSON object with a `run_id`; known fields are read in either spelling."""

    def normalised(self) -> dict[str, Any]:
        return {_SNAKE.get(key, key): value for key, value in self.root.items()}


def millis(stored: StoredReplay) -> tuple[int, int]:
    return int(stored.created_at.timestamp() * 1000), int(stored.updated_at.timestamp() * 1000)


def written_view(stored: StoredReplay) -> dict[str, Any]:
    created, updated = millis(stored)
    return {
        "runId": stored.run_id,
        "schemaVersion": _version(stored.schema_version),
        "redacted": True,
        "createTime": created,
        "updateTime": updated,
    }


def summary_view(stored: StoredReplay) -> dict[str, Any]:
    created, updated = millis(stored)
    return {
        "runId": stored.run_id,
        "schemaVersion": _version(stored.schema_version),
        "createTime": created,
        "updateTime": updated,
        "userRequest": stored.user_request,
        "finalResponse": stored.record.get("final_response"),
        "modelId": stored.model_id,
        "rounds": stored.rounds,
    }


def _version(text: str) -> int | str:
    """Numbers stay numbers, as the client sent them."""
    return int(text) if text.isdigit() else text
