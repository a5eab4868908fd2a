"""Responses on the chat-completions service and the durable chat runs.

A request becomes chat messages (`items.py`) and a `ChatCompletionRequest`. Answered in the
request, it runs on `ChatCompletionsService` (the agent loop when hosted tools are on), whose
output is told as chat-run events; in the background it starts a chat run exactly as
`POST /v1/chat/runs` does. Either way `events.ResponseFolder` makes the Responses events and
the response object from those events, so the two cannot drift apart.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from sogni_intelligence.agent.driver import Content, Final, LoopEvent, ToolProgress
from sogni_intelligence.api.chat_completions.protocol import ChatCompletionRequest
from sogni_intelligence.api.chat_completions.serving import (
    AgentTurn,
    ChatCompletionsService,
    prepend,
)
from sogni_intelligence.api.chat_runs.protocol import StartRunBody
from sogni_intelligence.api.chat_runs.serving import prepare_run, reject_inline_media
from sogni_intelligence.api.responses.events import ResponseFolder, fold, usage_of
from sogni_intelligence.api.responses.items import as_items, chat_messages, conversation_items
from sogni_intelligence.api.responses.protocol import NamedFunction, ResponsesRequest
from sogni_intelligence.api.sse import HEARTBEAT, HEARTBEAT_S, data_frame
from sogni_intelligence.errors import ServiceError, invalid_request
from sogni_intelligence.llm.protocol import Chunk, merge_tool_call
from sogni_intelligence.media.fetch import fetch_media
from sogni_intelligence.runtime.chat_run_steps import resolution
from sogni_intelligence.runtime.chat_runs import ChatRunRuntime
from sogni_intelligence.store.responses import ResponseStore, Saved

#: An internal event: a chat-run event type and its payload.
TurnEvent = tuple[str, dict[str, Any]]


def not_found() -> ServiceError:
    return ServiceError("No such response.", 404, "not_found_error", "not_found")


@dataclass(frozen=True)
class Prepared:
    id: str
    body: ResponsesRequest
    owner: str
    #: The request's own input items, and those of the conversation it continues.
    items: list[dict[str, Any]]
    context: list[dict[str, Any]]
    #: Chat-completions fields of the request, messages included.
    chat: dict[str, Any]


class ResponsesService:
    def __init__(
        self, chat: ChatCompletionsService, runs: ChatRunRuntime, store: ResponseStore
    ) -> None:
        self.chat = chat
        self.runs = runs
        self.store = store

    # -- reading saved responses ---------------------------------------------------------

    async def saved(self, owner: str, response_id: str) -> Saved:
        saved = await self.store.get(owner, response_id)
        if saved is None:
            raise not_found()
        return saved

    async def view(self, saved: Saved) -> dict[str, Any]:
        """The response object: as saved, or for a background one, folded from its run."""
        if saved.run_id is None:
            return saved.data["response"]
        folder, _ = fold(saved.data["response"], True, await self._run_events(saved.run_id))
        response = folder.response()
        if response["usage"] is None:  # still running: the tokens so far
            record = await self.runs.deps.records.get(saved.run_id)
            state = record.data.get("state") if record is not None else None
            response["usage"] = usage_of((state or {}).get("usage"))
        return response

    async def _run_events(self, run_id: str) -> list[TurnEvent]:
        return [(e.type, e.payload) for e in await self.runs.deps.records.all_events(run_id)]

    async def conversation(self, owner: str, response_id: str) -> list[dict[str, Any]]:
        """The items of a saved response's conversation: what it continued, its input and its
        output."""
        saved = await self.store.get(owner, response_id)
        if saved is None:
            raise ServiceError(
                f"Previous response '{response_id}' not found.",
                404,
                "not_found_error",
                "previous_response_not_found",
                "previous_response_id",
            )
        response = await self.view(saved)
        if response["status"] in ("queued", "in_progress"):
            raise invalid_request(
                f"Previous response '{response_id}' is still {response['status']}; continue it "
                "once it has finished.",
                "previous_response_id",
            )
        output = conversation_items(response["output"])
        return [*saved.data["context"], *saved.data["input"], *output]

    # -- a new response --------------------------------------------------------------------

    async def prepare(self, body: ResponsesRequest, owner: str) -> Prepared:
        context = []
        if body.previous_response_id is not None:
            context = await self.conversation(owner, body.previous_response_id)
        items = as_items(body.input)
        messages = chat_messages([*context, *items], offset=len(context))
        if body.instructions:
            messages.insert(0, {"role": "system", "content": body.instructions})
        chat: dict[str, Any] = {
            "model": body.model,
            "messages": messages,
            "tools": [
                {"type": "function", "function": t.model_dump(exclude={"type"}, exclude_none=True)}
                for t in body.tools or []
            ]
            or None,
            "tool_choice": _chat_tool_choice(body.tool_choice),
            "max_tokens": body.max_output_tokens,
            "temperature": body.temperature,
            "top_p": body.top_p,
            "sogni_tools": body.sogni_tools,
            "task_profile": body.task_profile,
        }
        return Prepared(
            "resp_" + secrets.token_hex(12), body, owner, _numbered(items), context, chat
        )

    def base(self, prepared: Prepared, model: str, run_id: str | None = None) -> dict[str, Any]:
        """The response's fixed fields: what the request asked for, echoed."""
        body = prepared.body
        text = body.text.format.echo() if body.text is not None else {"type": "text"}
        choice = body.tool_choice
        base = {
            "id": prepared.id,
            "object": "response",
            "created_at": int(time.time()),
            "model": model,
            "instructions": body.instructions,
            "tools": [t.model_dump(exclude_none=True) for t in body.tools or []],
            "tool_choice": choice.model_dump()
            if isinstance(choice, NamedFunction)
            else choice or "auto",
            "text": {"format": text},
            "temperature": body.temperature,
            "top_p": body.top_p,
            "max_output_tokens": body.max_output_tokens,
            "previous_response_id": body.previous_response_id,
            "metadata": body.metadata or {},
            "parallel_tool_calls": body.parallel_tool_calls is not False,
            "store": body.store,
            "background": body.background,
            "truncation": "disabled",
            "user": body.user,
        }
        if run_id is not None:
            base["sogni_run_id"] = run_id
        return base

    async def save(self, prepared: Prepared, response: dict[str, Any], run_id: str | None) -> None:
        if prepared.body.store:
            data = {"response": response, "input": prepared.items, "context": prepared.context}
            await self.store.put(Saved(prepared.id, prepared.owner, run_id, data))

    async def answer(self, prepared: Prepared) -> tuple[dict[str, Any], AsyncIterator[TurnEvent]]:
        """Run the response now: its fixed fields and its events (the first is taken only
        when the engine has started, so a request it refuses still gets a 4xx)."""
        chat = _validated(
            ChatCompletionRequest,
            {
                **prepared.chat,
                "messages": await self._fetched_images(prepared),
                "response_format": _response_format(prepared.body),
                "parallel_tool_calls": prepared.body.parallel_tool_calls,
                "user": prepared.body.user,
                "stream_options": {"include_usage": True},
            },
        )
        ready = await self.chat.prepare(chat)
        base = self.base(prepared, ready.entry.id)
        if ready.loop:
            turn = AgentTurn(self.chat, ready)
            session = await turn.session(prepared.owner, [])
            return base, _loop_events(self.chat.agent.run(session), session.usage)
        return base, _engine_events(self.chat.stream(ready, prepared.owner))

    async def _fetched_images(self, prepared: Prepared) -> list[dict[str, Any]]:
        """The messages with each http(s) image fetched (SSRF-guarded) into a data URI, which
        the chat route then checks and scales like any other."""
        messages = []
        for message in prepared.chat["messages"]:
            if isinstance(message.get("content"), list):
                parts = [await self._inline(part, prepared.owner) for part in message["content"]]
                message = {**message, "content": parts}
            messages.append(message)
        return messages

    async def _inline(self, part: dict[str, Any], owner: str) -> dict[str, Any]:
        url = part.get("image_url", {}).get("url", "")
        if not url.lower().startswith(("http://", "https://")):
            return part
        fetched = await fetch_media(
            url,
            policy=self.chat.fetch_policy,
            store=self.chat.agent.assets,
            owner=owner,
            kinds={"image"},
        )
        data = base64.b64encode(fetched.data).decode()
        return {
            "type": "image_url",
            "image_url": {"url": f"data:{fetched.sniffed.mime};base64,{data}"},
        }

    async def start_background(self, prepared: Prepared) -> dict[str, Any]:
        """Start the response as a durable chat run (the workflow of `POST /v1/chat/runs`)
        and save it; its fixed fields."""
        chat = prepared.chat
        run = _validated(
            StartRunBody,
            {
                "messages": chat["messages"],
                "tools": chat["tools"],
                "tool_choice": chat["tool_choice"],
                "model": chat["model"],
                "sampling": {
                    "temperature": chat["temperature"],
                    "top_p": chat["top_p"],
                    "max_tokens": chat["max_tokens"],
                },
                "sogni_tools": chat["sogni_tools"],
                "task_profile": chat["task_profile"],
            },
        )
        reject_inline_media(run)
        extra = {
            "response_format": _response_format(prepared.body),
            "parallel_tool_calls": prepared.body.parallel_tool_calls,
        }
        echo, engine, media = await prepare_run(self.chat, run, extra)
        record, _ = await self.runs.start(
            prepared.owner, {**echo, "responseId": prepared.id}, engine, media
        )
        base = self.base(prepared, engine["model"], record.id)
        await self.save(prepared, base, record.id)
        return base

    async def cancel(self, saved: Saved, reason: str | None = None) -> dict[str, Any]:
        if saved.run_id is None:
            raise invalid_request(
                "Only background responses can be cancelled; this one was answered in its request.",
                "response_id",
            )
        record = await self.runs.deps.records.get(saved.run_id)
        if record is not None:
            await self.runs.cancel(record, reason or "cancelled through the Responses API")
        return await self.view(saved)

    async def follow(self, saved: Saved, after: int) -> AsyncIterator[bytes]:
        """A background response's Responses events after `after` (a sequence number): its
        run's log folded from the start, so every number is the one first sent, then live;
        the stream closes once the response has ended."""
        assert saved.run_id is not None
        folder = ResponseFolder(saved.data["response"], background=True)
        followed = self.runs.deps.records.follow(saved.run_id, idle_s=HEARTBEAT_S)
        try:
            async for event in followed:
                if event is None:
                    yield HEARTBEAT
                    continue
                for out in folder.feed(event.type, event.payload):
                    if out["sequence_number"] > after:
                        yield sse_frame(out).encode()
                if folder.done:
                    return
        finally:
            await followed.aclose()  # type: ignore[attr-defined]


def sse_frame(event: dict[str, Any]) -> str:
    """A Responses event as SSE: its type as the `event:` field."""
    return f"event: {event['type']}\n{data_frame(event)}"


def _validated(model: type[Any], fields: dict[str, Any]) -> Any:
    """The chat request or run body for the translated fields; what they refuse is a 400."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise invalid_request(
            f"the input does not make a valid conversation ({where}): {message}", "input"
        ) from exc


def _chat_tool_choice(choice: Any) -> Any:
    if isinstance(choice, NamedFunction):
        return {"type": "function", "function": {"name": choice.name}}
    return choice


def _response_format(body: ResponsesRequest) -> dict[str, Any] | None:
    """`text.format` as the chat route's `response_format`."""
    if body.text is None or body.text.format.type == "text":
        return None
    fmt = body.text.format
    if fmt.type == "json_object":
        return {"type": "json_object"}
    schema = {"name": fmt.name or "response", "schema": fmt.json_schema, "strict": fmt.strict}
    return {"type": "json_schema", "json_schema": schema}


def _numbered(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Input items as `input_items` lists them: typed, with ids, message text as parts."""
    out = []
    for i, item in enumerate(items):
        item = {"type": "message", **item} if "role" in item and "type" not in item else dict(item)
        item.setdefault("id", f"item_{secrets.token_hex(8)}_{i}")
        if item["type"] == "message" and isinstance(item.get("content"), str):
            kind = "output_text" if item.get("role") == "assistant" else "input_text"
            item["content"] = [{"type": kind, "text": item["content"]}]
        out.append(item)
    return out


# -- a turn answered now, told as chat-run events -----------------------------------------------


async def _loop_events(
    run: AsyncIterator[LoopEvent], usage: dict[str, int]
) -> AsyncIterator[TurnEvent]:
    """The agent loop's turn (hosted tools on)."""
    async with aclosing(run) as events:
        first = await anext(events)
        yield "run_created", {}
        yield "run_started", {}
        async for event in prepend(first, events):
            if isinstance(event, Content):
                yield "assistant_message_delta", {"delta": event.text}
            elif isinstance(event, ToolProgress) and event.state == "started":
                call = {"toolCallId": event.call_id, "toolName": event.tool}
                yield "tool_call_dispatched", {**call, "arguments": event.arguments}
            elif isinstance(event, ToolProgress) and event.state == "running":
                yield "tool_call_progress", event.progress_payload()
            elif isinstance(event, ToolProgress):
                call = {"id": event.call_id, "function": {"name": event.tool}}
                yield "tool_call_resolved", resolution(call, event.result or {})
            elif isinstance(event, Final):
                yield "run_completed", _ending(event.message, event.finish_reason, usage)


async def _engine_events(chunks: AsyncIterator[Chunk]) -> AsyncIterator[TurnEvent]:
    """A plain completion's chunks (no hosted tools)."""
    async with aclosing(chunks) as stream:
        first = await anext(stream, None)
        yield "run_created", {}
        yield "run_started", {}
        text: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        finish = "stop"
        usage: dict[str, Any] = {}
        if first is not None:
            async for chunk in prepend(first, stream):
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    if delta.get("content"):
                        text.append(delta["content"])
                        yield "assistant_message_delta", {"delta": delta["content"]}
                    for fragment in delta.get("tool_calls") or []:
                        merge_tool_call(calls, fragment)
                    finish = choice.get("finish_reason") or finish
        message = {"content": "".join(text), "tool_calls": [calls[i] for i in sorted(calls)]}
        yield "run_completed", _ending(message, finish, usage)


def _ending(message: dict[str, Any], finish: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "content": message.get("content") or "",
        "finishReason": finish,
        "toolCalls": message.get("tool_calls") or [],
        "usage": dict(usage),
    }


async def frames_of(
    folder: ResponseFolder, events: AsyncIterator[TurnEvent]
) -> AsyncIterator[list[dict[str, Any]]]:
    """The Responses events of each internal event. A failure before the first is raised (the
    request gets its 4xx); one mid-turn becomes an `error` event and `response.failed`."""
    started = False
    try:
        async for kind, payload in events:
            if out := folder.feed(kind, payload):
                started = True
                yield out
    except ServiceError as exc:
        if not started:
            raise
        yield folder.fail(exc.code, exc.message, exc.param)
