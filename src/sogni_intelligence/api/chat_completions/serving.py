"""Chat completions: validate the request, hand it to the engine, shape the reply.

Engines always stream. A plain (non-stream) response is the same stream assembled here, so
both paths share one code path and one cancellation story.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sogni_intelligence.api.chat_completions.protocol import (
    ChatCompletionRequest,
    ImagePart,
    Message,
    NamedToolChoice,
)
from sogni_intelligence.api.chat_completions.vision import ImageLimits, normalise_image
from sogni_intelligence.errors import invalid_request
from sogni_intelligence.llm.grammar import check_schema
from sogni_intelligence.llm.protocol import ChatRequest, Chunk
from sogni_intelligence.llm.registry import ModelEntry, ModelRegistry

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


class ChatCompletionsService:
    def __init__(self, registry: ModelRegistry, limits: ImageLimits, max_images: int) -> None:
        self.registry = registry
        self.limits = limits
        self.max_images = max_images

    async def prepare(self, body: ChatCompletionRequest) -> PreparedChat:
        entry = self.registry.resolve(body.model)
        _check_tools(body)
        request: ChatRequest = {"messages": await self._messages(body, entry)}
        if body.token_limit is not None:
            request["max_tokens"] = body.token_limit
        for name in _SAMPLING_FIELDS:
            value = getattr(body, name)
            if value is not None:
                request[name] = value
        if body.tools:
            request["tools"] = [tool.model_dump(exclude_none=True) for tool in body.tools]
        if body.tool_choice is not None:
            choice = body.tool_choice
            request["tool_choice"] = (
                choice.model_dump() if isinstance(choice, NamedToolChoice) else choice
            )
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
        )

    async def _messages(
        self, body: ChatCompletionRequest, entry: ModelEntry
    ) -> list[dict[str, Any]]:
        images = [
            (i, j)
            for i, message in enumerate(body.messages)
            if isinstance(message.content, list)
            for j, part in enumerate(message.content)
            if isinstance(part, ImagePart)
        ]
        if images and not entry.engine.info.vision:
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
        return [_engine_message(i, m, normalised) for i, m in enumerate(body.messages)]

    async def stream(self, prepared: PreparedChat) -> AsyncIterator[Chunk]:
        """The engine's chunks under one id and the public model name."""
        role_sent = False
        async for chunk in prepared.entry.engine.stream(prepared.engine_request):
            choices = chunk.get("choices") or []
            if not choices:
                if prepared.include_usage and chunk.get("usage"):
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
            yield _chunk(prepared, out_choices)

    async def complete(self, prepared: PreparedChat) -> dict[str, Any]:
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
                    _merge_call(calls, call)
                finish_reason = choice.get("finish_reason") or finish_reason
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


def _check_tools(body: ChatCompletionRequest) -> None:
    names = [tool.function.name for tool in body.tools or []]
    choice = body.tool_choice
    if len(set(names)) != len(names):
        raise invalid_request("tool function names must be unique", "tools")
    if isinstance(choice, NamedToolChoice) and choice.function.name not in names:
        raise invalid_request(
            f"tool_choice names the function '{choice.function.name}', which is not in tools",
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


def _engine_message(
    index: int, message: Message, images: dict[tuple[int, int], str]
) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "system" if message.role == "developer" else message.role}
    content = message.content
    if isinstance(content, list):
        if any(isinstance(part, ImagePart) for part in content):
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


def _merge_call(calls: dict[int, dict[str, Any]], fragment: dict[str, Any]) -> None:
    index = fragment.get("index", 0)
    call = calls.setdefault(
        index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
    )
    if fragment.get("id"):
        call["id"] = fragment["id"]
    function = fragment.get("function") or {}
    if function.get("name"):
        call["function"]["name"] = function["name"]
    if function.get("arguments"):
        call["function"]["arguments"] += function["arguments"]


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
