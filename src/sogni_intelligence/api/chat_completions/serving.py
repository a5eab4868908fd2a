"""Chat completions: validate the request, hand it to the engine, shape the reply.

Engines always stream. A plain (non-stream) response is the same stream assembled here, so
both paths share one code path and one cancellation story.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sogni_intelligence.agent.driver import Content, Final, LoopEvent, ToolProgress
from sogni_intelligence.agent.loop import AgentLoop, Session
from sogni_intelligence.agent.media import attached_image, session_media, with_uploads_note
from sogni_intelligence.agent.profiles import PROFILES, profile_for, system_prompt
from sogni_intelligence.agent.surfaces import hosted_tools
from sogni_intelligence.api.chat_completions.protocol import (
    ChatCompletionRequest,
    ImagePart,
    Message,
    NamedToolChoice,
)
from sogni_intelligence.api.chat_completions.vision import ImageLimits, normalise_image
from sogni_intelligence.errors import invalid_request
from sogni_intelligence.llm.grammar import check_schema
from sogni_intelligence.llm.protocol import ChatRequest, Chunk, EngineError, merge_tool_call
from sogni_intelligence.llm.registry import ModelEntry, ModelRegistry
from sogni_intelligence.llm.tokens import prompt_tokens
from sogni_intelligence.media.fetch import FetchPolicy
from sogni_intelligence.store.usage import UsageStore
from sogni_intelligence.tools.base import Tool
from sogni_intelligence.tools.content_filter import requested

T = TypeVar("T")
_SAMPLING_FIELDS = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repetition_penalty",
    "frequency_penalty",
    "presence_penalty",
    "stop",
    "seed",
    "parallel_tool_calls",
    "chat_template_kwargs",
)


@dataclass(frozen=True)
class PreparedChat:
    entry: ModelEntry
    engine_request: ChatRequest
    include_usage: bool
    completion_id: str
    created: int
    #: Hosted tools on this request's surface (executed here when `loop` is set).
    hosted: dict[str, Tool] = field(default_factory=dict)
    loop: bool = False
    client_tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = None
    #: The request's images (normalised data URIs), which the loop registers as uploads.
    image_uris: list[str] = field(default_factory=list)
    #: Whether the content filter screens the hosted tool calls (`safe_content_filter`).
    safe_content_filter: bool = True


class ChatCompletionsService:
    def __init__(
        self,
        registry: ModelRegistry,
        limits: ImageLimits,
        max_images: int,
        agent: AgentLoop,
        fetch_policy: FetchPolicy,
        usage: UsageStore | None = None,
    ) -> None:
        self.registry = registry
        self.limits = limits
        self.max_images = max_images
        self.agent = agent
        self.fetch_policy = fetch_policy
        #: Counts each key's tokens against its tokens-per-minute limit.
        self.usage = usage

    async def prepare(
        self, body: ChatCompletionRequest, exposed: Mapping[str, Tool] | None = None
    ) -> PreparedChat:
        """`exposed`: the caller's template tools, offered on the `creative-agent` surface."""
        entry = self.registry.resolve(body.model)
        client_tools = [tool.model_dump(exclude_none=True) for tool in body.tools or []]
        hosted = hosted_tools(
            body.sogni_tools, {t["function"]["name"] for t in client_tools}, exposed
        )
        _check_tools(body, hosted)
        loop = bool(hosted) and body.sogni_tool_execution is not False
        messages, image_uris = await self._messages(body, entry, uploads=loop)
        profile = profile_for(body.task_profile, any(m.role == "developer" for m in body.messages))
        if profile is None and hosted:
            profile = "general"
        if profile is not None:
            messages = _with_system(messages, system_prompt(profile, bool(hosted)))
        request: ChatRequest = {"messages": messages}
        if body.token_limit is not None:
            request["max_tokens"] = body.token_limit
        if profile is not None:
            request["temperature"] = PROFILES[profile].temperature
            request["top_p"] = PROFILES[profile].top_p
        for name in _SAMPLING_FIELDS:
            value = getattr(body, name)
            if value is not None:
                request[name] = value
        choice = body.tool_choice
        wire_choice = choice.model_dump() if isinstance(choice, NamedToolChoice) else choice
        # The loop lists the tools on each round itself; building their schemas is not free
        # (tens of ms for a whole surface), so only a request the engine answers gets them.
        tools = [] if loop else client_tools + [tool.definition() for tool in hosted.values()]
        if tools:
            request["tools"] = tools
            if wire_choice is not None:
                request["tool_choice"] = wire_choice
        if body.response_format is not None and body.response_format.type != "text":
            request["response_format"] = body.response_format.model_dump(
                by_alias=True, exclude_none=True
            )
        return PreparedChat(
            entry=entry,
            engine_request=request,
            include_usage=bool(body.stream_options and body.stream_options.include_usage),
            completion_id="chatcmpl-" + secrets.token_hex(12),
            created=int(time.time()),
            hosted=hosted,
            loop=loop,
            client_tools=client_tools,
            tool_choice=wire_choice or "auto",
            image_uris=image_uris,
            safe_content_filter=requested(body.safe_content_filter),
        )

    async def _messages(
        self, body: ChatCompletionRequest, entry: ModelEntry, uploads: bool
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """The engine's messages and the request's images. When the server runs hosted tools, a
        model without image input still takes images: the tools get them as uploads and the
        model a note of their index."""
        images = [
            (i, j)
            for i, message in enumerate(body.messages)
            if isinstance(message.content, list)
            for j, part in enumerate(message.content)
            if isinstance(part, ImagePart)
        ]
        if images and not entry.engine.info.vision and not uploads:
            raise invalid_request(
                f"The model '{entry.id}' has no image input; send text only or choose a "
                "vision model.",
                "messages",
                "model_not_vision",
            )
        if len(images) > self.max_images:
            raise invalid_request(f"at most {self.max_images} images per request", "messages")
        normalised: dict[tuple[int, int], str] = {}
        if images:
            urls = await asyncio.to_thread(
                lambda: {
                    (i, j): normalise_image(
                        body.messages[i].content[j].image_url.url,  # type: ignore[index,union-attr]
                        self.limits,
                        f"messages.{i}.content.{j}.image_url.url",
                    )
                    for i, j in images
                }
            )
            normalised.update(urls)
        uris = [normalised[place] for place in images]
        if images and not entry.engine.info.vision:
            notes = {place: attached_image(n) for n, place in enumerate(images, 1)}
            return [_engine_message(i, m, {}, notes) for i, m in enumerate(body.messages)], uris
        messages = [_engine_message(i, m, normalised) for i, m in enumerate(body.messages)]
        return messages, uris if uploads else []

    async def stream(self, prepared: PreparedChat, owner: str) -> AsyncIterator[Chunk]:
        """The engine's chunks under one id and the public model name."""
        role_sent = False
        counted = False
        pieces = 0  # generated pieces so far: about a token each
        try:
            async for chunk in prepared.entry.engine.stream(prepared.engine_request):
                choices = chunk.get("choices") or []
                if not choices:
                    if chunk.get("usage"):
                        await self.count_tokens(owner, chunk["usage"])
                        counted = True
                        if prepared.include_usage:
                            yield _chunk(prepared, [], usage=_usage(chunk["usage"]))
                    continue
                out_choices = []
                for choice in choices:
                    delta = dict(choice.get("delta") or {})
                    if not role_sent:
                        delta["role"] = "assistant"
                        role_sent = True
                    if delta.get("role") and "content" in delta and delta["content"] is None:
                        delta["content"] = ""
                    out_choices.append(
                        {"index": 0, "delta": delta, "finish_reason": choice.get("finish_reason")}
                    )
                pieces += 1
                yield _chunk(prepared, out_choices)
        finally:
            if not counted and pieces:
                # Closed before the engine's usage (a client gone, a stop sequence cut here):
                # the tokens were spent all the same.
                await asyncio.shield(self._count_unfinished(prepared, owner, pieces))

    async def _count_unfinished(self, prepared: PreparedChat, owner: str, pieces: int) -> None:
        if self.usage is None:
            return
        try:
            prompt = await prompt_tokens(prepared.entry.engine, prepared.engine_request)
        except EngineError:
            prompt = 0
        await self.count_tokens(owner, {"total_tokens": prompt + pieces})

    async def count_tokens(self, owner: str, usage: dict[str, Any]) -> None:
        if self.usage is not None:
            await self.usage.add_tokens(owner, int(usage.get("total_tokens") or 0))

    async def complete(self, prepared: PreparedChat, owner: str) -> dict[str, Any]:
        content: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        finish_reason: str | None = None
        usage: dict[str, Any] | None = None
        async for chunk in prepared.entry.engine.stream(prepared.engine_request):
            if chunk.get("usage"):
                usage = _usage(chunk["usage"])
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    content.append(delta["content"])
                for call in delta.get("tool_calls") or []:
                    merge_tool_call(calls, call)
                finish_reason = choice.get("finish_reason") or finish_reason
        await self.count_tokens(owner, usage or {})
        message: dict[str, Any] = {"role": "assistant", "content": "".join(content) or None}
        if calls:
            message["tool_calls"] = [calls[i] for i in sorted(calls)]
        elif message["content"] is None:
            message["content"] = ""
        return {
            "id": prepared.completion_id,
            "object": "chat.completion",
            "created": prepared.created,
            "model": prepared.entry.id,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason or "stop"}],
            "usage": usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }


class AgentTurn:
    """One chat completion served by the agent loop, as a response or as chunks."""

    def __init__(self, service: ChatCompletionsService, prepared: PreparedChat) -> None:
        self.service = service
        self.prepared = prepared

    async def session(
        self,
        owner: str,
        references: list[dict[str, Any]],
        billing: dict[str, Any] | None = None,
    ) -> Session:
        agent = self.service.agent
        media, lines = await session_media(
            owner, references, self.prepared.image_uris, agent.assets, self.service.fetch_policy
        )
        request = self.prepared.engine_request
        messages = with_uploads_note(request["messages"], lines)
        return Session(
            owner=owner,
            engine=self.prepared.entry.engine,
            request={**request, "messages": messages},
            client_tools=self.prepared.client_tools,
            hosted=self.prepared.hosted,
            tool_choice=self.prepared.tool_choice,
            media=media,
            safe_content_filter=self.prepared.safe_content_filter,
            billing={k: v for k, v in (billing or {}).items() if v is not None},
        )

    def extras(self, session: Session) -> dict[str, Any]:
        return {
            "sogni_tool_results": session.tool_results,
            "creative_workflows": session.workflows,
        }

    async def complete(self, session: Session) -> dict[str, Any]:
        final: Final | None = None
        async for event in self.service.agent.run(session):
            if isinstance(event, Final):
                final = event
        assert final is not None
        prepared = self.prepared
        return {
            "id": prepared.completion_id,
            "object": "chat.completion",
            "created": prepared.created,
            "model": prepared.entry.id,
            "choices": [
                {"index": 0, "message": final.message, "finish_reason": final.finish_reason}
            ],
            "usage": session.usage,
            **self.extras(session),
        }

    async def stream(self, session: Session) -> AsyncIterator[Chunk | str]:
        """Chunks of every round's text, SSE comments for tool progress (invisible to OpenAI
        clients), then the client's tool calls if any and a closing chunk with our extras."""
        async with aclosing(self.service.agent.run(session)) as events:
            async for frame in self._frames(session, events):
                yield frame

    async def _frames(
        self, session: Session, events: AsyncIterator[LoopEvent]
    ) -> AsyncIterator[Chunk | str]:
        prepared = self.prepared
        # The first event before any output, so a request the engine refuses can still get
        # a real 4xx status.
        first = await anext(events)
        yield _chunk(prepared, [_choice({"role": "assistant", "content": ""})])
        async for event in prepend(first, events):
            if isinstance(event, Content):
                yield _chunk(prepared, [_choice({"content": event.text})])
            elif isinstance(event, ToolProgress) and event.state == "running":
                yield f": tool_call_progress {json.dumps(event.progress_payload())}\n\n"
            elif isinstance(event, ToolProgress):
                state = event.state if event.ok is None else ("ok" if event.ok else "failed")
                yield f": tool {event.tool} {event.call_id} {state}\n\n"
            else:
                # A turn ended by a control tool answers with its question or summary, which
                # the model never streamed as text: send it, as the plain response carries it.
                if event.ended_by is not None and event.message.get("content"):
                    yield _chunk(prepared, [_choice({"content": event.message["content"]})])
                calls = event.message.get("tool_calls") or []
                for index, call in enumerate(calls):
                    yield _chunk(prepared, [_choice({"tool_calls": [{**call, "index": index}]})])
                closing = _chunk(prepared, [_choice({}, event.finish_reason)])
                yield {**closing, **self.extras(session)}
        if prepared.include_usage:
            yield _chunk(prepared, [], usage=session.usage)


async def prepend(first: T, rest: AsyncIterator[T]) -> AsyncIterator[T]:
    """`first` (an item already taken to see that the work started), then the rest."""
    yield first
    async for event in rest:
        yield event


def _choice(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "finish_reason": finish_reason}


def _check_tools(body: ChatCompletionRequest, hosted: dict[str, Tool]) -> None:
    client = [tool.function.name for tool in body.tools or []]
    names = client + list(hosted)
    choice = body.tool_choice
    if len(set(client)) != len(client):
        raise invalid_request("tool function names must be unique", "tools")
    if isinstance(choice, NamedToolChoice) and choice.function.name not in names:
        raise invalid_request(
            f"tool_choice names the function '{choice.function.name}', which is neither in "
            "tools nor a hosted tool of this request's sogni_tools surface",
            "tool_choice",
        )
    if choice == "required" and not names:
        raise invalid_request("tool_choice 'required' needs at least one tool", "tool_choice")
    for i, tool in enumerate(body.tools or []):
        if tool.function.parameters is not None:
            check_schema(tool.function.parameters, f"tools.{i}.function.parameters")
    if body.response_format is not None and body.response_format.json_schema is not None:
        check_schema(
            body.response_format.json_schema.json_schema, "response_format.json_schema.schema"
        )


def _with_system(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """Our system prompt first; the client's own system text follows it."""
    if messages and messages[0]["role"] == "system" and isinstance(messages[0]["content"], str):
        return [{**messages[0], "content": f"{text}\n\n{messages[0]['content']}"}, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def _engine_message(
    index: int,
    message: Message,
    images: dict[tuple[int, int], str],
    notes: dict[tuple[int, int], str] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "system" if message.role == "developer" else message.role}
    content = message.content
    if isinstance(content, list):
        if notes and any(isinstance(part, ImagePart) for part in content):
            out["content"] = "\n".join(
                notes[(index, j)] if isinstance(part, ImagePart) else part.text
                for j, part in enumerate(content)
            )
        elif any(isinstance(part, ImagePart) for part in content):
            out["content"] = [
                {"type": "image_url", "image_url": {"url": images[(index, j)]}}
                if isinstance(part, ImagePart)
                else {"type": "text", "text": part.text}
                for j, part in enumerate(content)
            ]
        else:
            out["content"] = "\n".join(part.text for part in content)  # type: ignore[union-attr]
    else:
        out["content"] = content or ""
    if message.tool_calls:
        out["tool_calls"] = [call.model_dump() for call in message.tool_calls]
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    if message.name:
        out["name"] = message.name
    return out


def _usage(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.get("prompt_tokens", 0),
        "completion_tokens": usage.get("completion_tokens", 0),
        "total_tokens": usage.get("total_tokens", 0),
    }


def _chunk(
    prepared: PreparedChat, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None
) -> Chunk:
    chunk: Chunk = {
        "id": prepared.completion_id,
        "object": "chat.completion.chunk",
        "created": prepared.created,
        "model": prepared.entry.id,
        "choices": choices,
    }
    if usage is not None:
        chunk["usage"] = usage
    return chunk
