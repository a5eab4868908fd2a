"""Chat-run logic between the routes and the durable runtime: input rules, the engine request
(prepared exactly as chat completions prepare theirs) and the event stream."""

from __future__ import annotations

import copy
import secrets
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from fastapi import Request

from sogni_intelligence.agent.media import attached_image
from sogni_intelligence.api.chat_completions.protocol import (
    ChatCompletionRequest,
    ImagePart,
    Message,
    TextPart,
)
from sogni_intelligence.api.chat_completions.serving import ChatCompletionsService
from sogni_intelligence.api.chat_runs.protocol import StartRunBody
from sogni_intelligence.api.sse import Framed, is_latest, nothing, record_events
from sogni_intelligence.api.state import server_of
from sogni_intelligence.errors import ServiceError, invalid_request
from sogni_intelligence.runtime.chat_run_forks import fork_point
from sogni_intelligence.runtime.chat_run_steps import MEDIA_CONTEXT_FIELDS
from sogni_intelligence.runtime.chat_runs import (
    STREAM_CLOSES_AFTER,
    TERMINAL_EVENTS,
    ChatRunRuntime,
)
from sogni_intelligence.store.records import Event, Record

INLINE_MEDIA_MESSAGE = (
    "Durable chat runs do not support inline base64/data URI media. Upload media first and "
    "pass HTTP(S) URLs instead. Offending field(s): "
)


def runs_of(request: Request) -> ChatRunRuntime:
    return server_of(request).chat_runs


async def owned_run(request: Request, owner: str | None, run_id: str) -> Record:
    """The run if `owner` owns it (None: anyone may), else a 404."""
    record = await runs_of(request).deps.records.get(run_id, owner)
    if record is None or record.kind != "chat_run":
        raise ServiceError("No such chat run.", 404, "not_found_error", "not_found")
    return record


def _is_remote(url: Any) -> bool:
    return isinstance(url, str) and url.lower().startswith(("http://", "https://"))


def reject_inline_media(body: StartRunBody) -> None:
    """Media of a run must be http(s) URLs; anything else is named in one 400."""
    bad = []
    for i, message in enumerate(body.messages):
        if isinstance(message.content, list):
            for j, part in enumerate(message.content):
                if isinstance(part, ImagePart) and not _is_remote(part.image_url.url):
                    bad.append(f"messages[{i}].content[{j}].image_url.url")
    for i, reference in enumerate(body.media_references or []):
        if reference.get("dataUri") or reference.get("data_uri") or reference.get("data"):
            bad.append(f"mediaReferences[{i}].dataUri")
        elif not _is_remote(reference.get("url") or reference.get("value")):
            bad.append(f"mediaReferences[{i}].url")
    for field, urls in (body.media_context or {}).items():
        if field not in MEDIA_CONTEXT_FIELDS:
            raise ServiceError(
                f"unknown media_context field {field!r}; use {', '.join(MEDIA_CONTEXT_FIELDS)}",
                400,
                "invalid_request_error",
                "invalid_request",
                "media_context",
            )
        bad += [f"mediaContext.{field}[{i}]" for i, url in enumerate(urls) if not _is_remote(url)]
    if bad:
        raise ServiceError(
            INLINE_MEDIA_MESSAGE + ", ".join(bad),
            400,
            "invalid_request_error",
            "inline_media_not_supported",
            bad[0],
        )


def _media_and_messages(body: StartRunBody) -> tuple[list[dict[str, str]], list[Message]]:
    """The media to fetch, in index order (`media_context` first, so a continued session
    keeps its indices, then `media_references`, then the messages' images), and the
    messages with each image replaced by a note of its index."""
    media: list[dict[str, str]] = []
    for field, (part, _) in MEDIA_CONTEXT_FIELDS.items():
        urls = (body.media_context or {}).get(field, [])
        media += [
            {
                "part": part,
                "url": url,
                "label": f"media_context.{field}[{i}]",
                "param": f"media_context.{field}[{i}]",
            }
            for i, url in enumerate(urls)
        ]
    media += [
        {
            "part": "uploads",
            "url": r.get("url") or r.get("value"),
            "label": f"media reference {i + 1}",
            "param": f"media_references[{i}].url",
        }
        for i, r in enumerate(body.media_references or [])
    ]
    messages = []
    attached = 0
    for m, message in enumerate(body.messages):
        if isinstance(message.content, list):
            parts: list[TextPart] = []
            for p, part in enumerate(message.content):
                if isinstance(part, ImagePart):
                    attached += 1
                    media.append(
                        {
                            "part": "uploads",
                            "url": part.image_url.url,
                            "label": f"attached image {attached}",
                            "param": f"messages[{m}].content[{p}].image_url.url",
                        }
                    )
                    parts.append(TextPart(type="text", text=attached_image(attached)))
                else:
                    parts.append(part)
            message = message.model_copy(update={"content": parts})
        messages.append(message)
    return media, messages


async def prepare_run(
    service: ChatCompletionsService, body: StartRunBody, extra: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, str]]]:
    """The public request echo, what the loop needs, and the media to fetch. `extra` are more
    chat-completions fields for the engine request (a Responses output format)."""
    media, messages = _media_and_messages(body)
    sampling = body.sampling.model_dump(exclude_none=True) if body.sampling else {}
    chat = ChatCompletionRequest.model_validate(
        {
            "model": body.model,
            "messages": [m.model_dump(exclude_none=True) for m in messages],
            "tools": [t.model_dump(exclude_none=True) for t in body.tools or []] or None,
            "tool_choice": body.tool_choice.model_dump()
            if hasattr(body.tool_choice, "model_dump")
            else body.tool_choice,
            "sogni_tools": body.sogni_tools,
            "task_profile": body.task_profile,
            **sampling,
            **(extra or {}),
        }
    )
    prepared = await service.prepare(chat)
    engine = {
        "model": prepared.entry.id,
        "request": prepared.engine_request,
        "clientTools": prepared.client_tools,
        "hosted": list(prepared.hosted),
        "toolChoice": prepared.tool_choice,
    }
    # Every run samples with a known seed, so that it can be replayed.
    engine["request"].setdefault("seed", secrets.randbelow(2**31))
    echo = {
        "sessionId": body.session_id,
        "clientMessageId": body.client_message_id,
        "model": prepared.entry.id,
        "messages": [m.model_dump(exclude_none=True) for m in body.messages],
        "tools": [t.model_dump(exclude_none=True) for t in body.tools or []] or None,
        "toolChoice": engine["toolChoice"],
        "sampling": sampling or None,
        "mediaReferences": body.media_references,
        "mediaContext": body.media_context,
        "maxEstimatedCapacityUnits": body.max_estimated_capacity_units,
        "confirmCost": body.confirm_cost,
        "runtimeConfig": body.runtime_config,
        "tokenType": body.token_type,
        "billingMode": body.billing_mode,
        "appSource": body.app_source,
        "sogniTools": body.sogni_tools,
    }
    return echo, engine, media


async def prepare_fork(
    request: Request, owner: str, body: StartRunBody
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, str]], dict[str, Any]]:
    """As `prepare_run`, for a run that continues another run's history (`fork_from`): its
    engine, tools and sampling unless the body changes the model or sampling."""
    assert body.fork_from is not None
    runs = runs_of(request)
    original = await owned_run(request, owner, body.fork_from.run_id)
    events = await runs.deps.records.all_events(original.id)
    point = fork_point(original, events, body.fork_from.after_sequence)
    media, messages = _media_and_messages(body)
    if point.ends_with_answer and not messages:
        raise invalid_request(
            "the forked history ends with the run's answer; add a message to continue it",
            "messages",
        )
    engine = copy.deepcopy(original.data["engine"])
    if point.kept_rounds:  # a forced first-round choice was used up by the original
        engine["toolChoice"] = "auto"
    if body.model is not None:
        engine["model"] = server_of(request).registry.resolve(body.model).id
    sampling = body.sampling.model_dump(exclude_none=True) if body.sampling else {}
    engine["request"].update(sampling)
    added = [m.model_dump(exclude_none=True) for m in messages]
    engine["request"]["messages"] = point.messages + added
    echo = {
        **original.data["request"],
        "model": engine["model"],
        "messages": added,
        "sampling": {**(original.data["request"].get("sampling") or {}), **sampling} or None,
        "mediaReferences": body.media_references,
        "mediaContext": body.media_context,
        "forkFrom": {"runId": original.id, "afterSequence": body.fork_from.after_sequence},
        "replay": body.replay,
        "sessionId": body.session_id or original.data["request"].get("sessionId"),
        "clientMessageId": body.client_message_id,
    }
    fork = {
        "runId": original.id,
        "afterSequence": body.fork_from.after_sequence,
        "media": point.media,
        "laterRounds": point.later_rounds,
    }
    return echo, engine, media, fork


async def event_stream(runs: ChatRunRuntime, record_id: str, after: int) -> AsyncIterator[bytes]:
    """Replay after the cursor, then live events; close after a terminal event, and after
    `run_waiting_for_user` while the run still waits."""
    records = runs.deps.records
    record = await records.get(record_id)
    settled = record is not None and record.status not in ("queued", "running")
    if settled and not await records.events(record_id, after, limit=1):
        return nothing()  # nothing new will come before the user acts

    async def frame(event: Event) -> Framed:
        closes = event.type in TERMINAL_EVENTS
        if event.type in STREAM_CLOSES_AFTER - TERMINAL_EVENTS:
            closes = await is_latest(records, event)
        return "run", partial(runs.public_event, event), closes

    return record_events(records, record_id, after, frame)
