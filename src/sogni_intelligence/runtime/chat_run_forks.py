"""Forks of a chat run: the history a new run starts from when it continues another run
after one of its events, and the original's later rounds a replay is compared with.

A run's state keeps its whole conversation; its events say when each part was settled. A
round's tool batch (the assistant message that called the tools and their results) counts as
settled at its last `tool_call_resolved`; the final answer at the run's last
`assistant_message_completed`. A fork after sequence N keeps what was settled by N, and the
media the kept part had (generated results of later batches are left out, so indices match).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sogni_intelligence.agent.media import note_takes_a_message
from sogni_intelligence.errors import ServiceError, invalid_request
from sogni_intelligence.store.events import Event
from sogni_intelligence.store.records import Record

UNSETTLED = ("queued", "running")


@dataclass(frozen=True)
class ForkPoint:
    #: The conversation to continue from (engine form: system, user, assistant, tool).
    messages: list[dict[str, Any]]
    #: The media context's asset ids as they were then.
    media: dict[str, dict[str, list[str]]]
    #: The original's rounds after the point, `{content, toolCalls}` each, for a replay.
    later_rounds: list[dict[str, Any]]
    #: Whether the kept history ends with the run's final answer (a new message must follow).
    ends_with_answer: bool
    #: How many of the original's rounds the history holds.
    kept_rounds: int


def _settled_parts(record: Record, events: list[Event]) -> tuple[int, list[tuple[int, int, bool]]]:
    """Where the run's own messages start, and each part it added: (end index, sequence it
    was settled at, whether it is the final answer)."""
    data = record.data
    engine_messages = data["engine"]["request"]["messages"]
    messages = (data.get("state") or {}).get("messages") or engine_messages
    noted = bool(data.get("mediaInputs")) and note_takes_a_message(engine_messages)
    start = len(engine_messages) + (1 if noted and len(messages) > len(engine_messages) else 0)
    resolved = {
        e.payload["toolCallId"]: e.sequence for e in events if e.type == "tool_call_resolved"
    }
    answered = [e.sequence for e in events if e.type == "assistant_message_completed"]
    parts: list[tuple[int, int, bool]] = []
    i = start
    while i < len(messages):
        message = messages[i]
        ids = [c.get("id") for c in message.get("tool_calls") or []]
        following = i + 1
        while following < len(messages) and messages[following].get("role") == "tool":
            following += 1
        if ids and following > i + 1:  # hosted calls and their results
            settled = max(resolved.get(call_id, _NEVER) for call_id in ids)
            parts.append((following, settled, False))
            i = following
        else:  # the answer (perhaps with the client's own tool calls)
            parts.append((i + 1, answered[-1] if answered else _NEVER, True))
            i += 1
    return start, parts


_NEVER = 2**62


def fork_point(record: Record, events: list[Event], after: int) -> ForkPoint:
    """What a run forked from `record` after event `after` starts with; a 4xx when the run
    cannot be forked there."""
    if record.status in UNSETTLED:
        raise ServiceError(
            "The run is still running; fork it once it has finished or waits for you.",
            409,
            "invalid_request_error",
            "run_not_settled",
        )
    last = events[-1].sequence if events else 0
    if after > last:
        raise invalid_request(
            f"the run's last event is {last}; after_sequence must not be later",
            "fork_from.after_sequence",
        )
    data = record.data
    messages = (data.get("state") or {}).get("messages") or data["engine"]["request"]["messages"]
    start, parts = _settled_parts(record, events)
    kept = [part for part in parts if part[1] <= after]
    end = kept[-1][0] if kept else start
    cutoff = kept[-1][1] if kept else -1
    later_assets = {
        artifact.get("id")
        for e in events
        if e.type == "tool_call_resolved" and e.sequence > cutoff
        for artifact in e.payload.get("artifacts") or []
    }
    media = (data.get("state") or {}).get("media") or {}
    kept_media = {
        part: {
            kind: [a for a in ids if part != "generated" or a not in later_assets]
            for kind, ids in (media.get(part) or {}).items()
        }
        for part in ("uploads", "generated")
    }
    rounds = [
        {"content": e.payload.get("content", ""), "toolCalls": e.payload.get("toolCalls", [])}
        for e in events
        if e.type == "assistant_message_completed"
    ]
    return ForkPoint(
        messages=messages[:end],
        media=kept_media,
        later_rounds=rounds[len(kept) :],
        ends_with_answer=bool(kept) and kept[-1][2],
        kept_rounds=len(kept),
    )


def diverged(
    expected: list[dict[str, Any]], number: int, content: str, calls: list[str]
) -> dict[str, Any] | None:
    """The `replay_diverged` payload of round `number`, or None when it matches."""
    actual = {"content": content, "toolCalls": calls}
    if number >= len(expected):
        return {"round": number, "reason": "the original had no such round", "actual": actual}
    if expected[number] == actual:
        return None
    return {"round": number, "expected": expected[number], "actual": actual}
