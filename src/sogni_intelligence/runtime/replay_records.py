"""The RunRecord of a finished chat run, written to the replay records as the run ends, and
the checks every RunRecord passes before it is stored (size, id, redaction)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from sogni_intelligence.errors import ServiceError, invalid_request
from sogni_intelligence.runtime.redaction import redact
from sogni_intelligence.store.events import Event
from sogni_intelligence.store.records import Record, RecordStore
from sogni_intelligence.store.replays import ReplayStore, StoredReplay

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")
#: The chat-run events that end a run (its record is written after them).
RUN_ENDINGS = frozenset({"run_completed", "run_partial_failure", "run_failed", "run_cancelled"})


def checked(record: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """The record as it will be stored (redacted), or a 4xx that says what is wrong."""
    size = len(json.dumps(record, separators=(",", ":")).encode())
    if size > max_bytes:
        raise ServiceError(
            f"The record is {size} bytes; the limit is {max_bytes}.",
            413,
            "invalid_request_error",
            "record_too_large",
        )
    run_id = record.get("run_id")
    if not isinstance(run_id, str) or not RUN_ID.match(run_id):
        raise invalid_request(
            "run_id must be 1 to 128 letters, digits, '_', '.', ':' or '-'", "run_id"
        )
    rounds = record.get("rounds")
    if rounds is not None and not isinstance(rounds, list):
        raise invalid_request("rounds must be a list", "rounds")
    return redact(record)


def run_record(record: Record, events: list[Event]) -> dict[str, Any]:
    """A chat run as a RunRecord: the request, each round's answer with its tool calls and
    their results, and how the run ended."""
    data = record.data
    rounds: dict[int, dict[str, Any]] = {}
    calls: dict[str, dict[str, Any]] = {}
    for event in events:
        payload = event.payload
        if event.type == "assistant_message_completed":
            rounds[payload["round"]] = {
                "round": payload["round"],
                "content": payload.get("content", ""),
                "finish_reason": payload.get("finishReason"),
                "tool_calls": [],
                "at": event.at.isoformat(),
            }
        elif event.type == "tool_call_dispatched" and rounds:
            call = {
                "id": payload["toolCallId"],
                "name": payload["toolName"],
                "arguments": payload.get("arguments"),
            }
            calls[call["id"]] = call
            rounds[max(rounds)]["tool_calls"].append(call)
        elif event.type == "tool_call_resolved" and payload["toolCallId"] in calls:
            calls[payload["toolCallId"]]["result"] = {
                "status": payload.get("status"),
                "summary": payload.get("summary"),
                "error_code": payload.get("errorCode"),
                "media": [a.get("url") for a in payload.get("artifacts") or []],
            }
    users = [m for m in data["request"]["messages"] if m.get("role") == "user"]
    final = data.get("finalResponse") or {}
    return {
        "run_id": record.id,
        "schema_version": SCHEMA_VERSION,
        "source": "chat_run",
        "model_id": data["request"].get("model"),
        "status": record.status,
        "user_request": _text(users[-1]["content"]) if users else None,
        "final_response": final.get("content") if final else data.get("failureReason"),
        "messages": data["request"]["messages"],
        "rounds": [rounds[n] for n in sorted(rounds)],
        "usage": (data.get("state") or {}).get("usage"),
        "created_at": record.created_at.isoformat(),
        "completed_at": data.get("completedAt"),
    }


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(p.get("text", "") for p in content or [] if isinstance(p, dict))


class RunReplays:
    """Writes each chat run's RunRecord as the run ends, in the process that ended it."""

    def __init__(self, records: RecordStore, replays: ReplayStore, max_bytes: int) -> None:
        self.records = records
        self.replays = replays
        self.max_bytes = max_bytes
        self._writing: set[asyncio.Task[None]] = set()

    def watch(self) -> None:
        self.records.watch(self._heard)

    def _heard(self, event: Event) -> None:
        if event.type in RUN_ENDINGS:
            task = asyncio.get_running_loop().create_task(self.write(event.record_id))
            self._writing.add(task)
            task.add_done_callback(self._writing.discard)

    async def write(self, record_id: str) -> StoredReplay | None:
        try:
            record = await self.records.get(record_id)
            if record is None or record.kind != "chat_run":
                return None
            events = await self.records.all_events(record_id)
            built = run_record(record, events)
            return await self.replays.put(record.owner, checked(built, self.max_bytes))
        except Exception:  # the run itself is finished and kept; only its replay is missing
            log.exception("writing the replay record of %s failed", record_id)
            return None

    async def settle(self) -> None:
        """Wait for the records being written (at shutdown)."""
        if self._writing:
            await asyncio.gather(*self._writing, return_exceptions=True)
