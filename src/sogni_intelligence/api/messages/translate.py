"""A Messages request as the chat completion it means, so that one service, one agent loop and
one set of grammars serve both APIs.

Blocks become chat messages: `system` the leading system message, an assistant's `tool_use`
blocks its `tool_calls`, a user's `tool_result` blocks `tool` messages (in order, before the
rest of that user message, as the API requires them first), and the images of a tool result a
user message after them (only user messages carry images).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sogni_intelligence.api.chat_completions.protocol import ChatCompletionRequest
from sogni_intelligence.api.messages.protocol import (
    AnyChoice,
    Base64Source,
    ImageBlock,
    InputMessage,
    MessagesInput,
    MessagesRequest,
    NamedChoice,
    NoChoice,
    TextBlock,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
)
from sogni_intelligence.errors import invalid_request

#: What a failed tool result's text starts with, so the model reads it as a failure.
ERROR_PREFIX = "Error: "


def chat_request(body: MessagesInput, fetched: Mapping[str, str]) -> ChatCompletionRequest:
    """The chat completion `body` asks for; `fetched` holds the data URI of each image URL.
    Stop sequences are not passed on: the reply is cut at them here, to say which one it was."""
    fields: dict[str, Any] = {
        "model": body.model,
        "messages": chat_messages(body, fetched),
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.input_schema,
                },
            }
            for tool in body.tools or []
        ]
        or None,
        "tool_choice": chat_tool_choice(body.tool_choice),
        "parallel_tool_calls": _parallel(body.tool_choice),
        # Anthropic clients know nothing of hosted tools: they come only when asked for.
        "sogni_tools": "none" if body.sogni_tools is None else body.sogni_tools,
        # Usage closes every message, streamed or not.
        "stream_options": {"include_usage": True},
    }
    if isinstance(body, MessagesRequest):
        fields.update(
            max_tokens=body.max_tokens,
            temperature=body.temperature,
            top_p=body.top_p,
            top_k=body.top_k,
            user=body.metadata.user_id if body.metadata else None,
        )
    return ChatCompletionRequest.model_validate(fields)


def chat_tool_choice(choice: ToolChoice | None) -> Any:
    """`auto` and `none` as they are, `any` as `required`, `tool` as a named function."""
    if choice is None:
        return None
    if isinstance(choice, AnyChoice):
        return "required"
    if isinstance(choice, NamedChoice):
        return {"type": "function", "function": {"name": choice.name}}
    return "none" if isinstance(choice, NoChoice) else "auto"


def _parallel(choice: ToolChoice | None) -> bool | None:
    disabled = getattr(choice, "disable_parallel_tool_use", None)
    return False if disabled else None


def image_url(block: ImageBlock, fetched: Mapping[str, str]) -> str:
    source = block.source
    if isinstance(source, Base64Source):
        return f"data:{source.media_type};base64,{source.data}"
    return fetched[source.url]


def chat_messages(body: MessagesInput, fetched: Mapping[str, str]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if body.system_text:
        messages.append({"role": "system", "content": body.system_text})
    names: dict[str, str] = {}  # tool_use id -> tool name
    for i, message in enumerate(body.messages):
        if isinstance(message.content, str):
            messages.append({"role": message.role, "content": message.content})
        elif message.role == "assistant":
            messages.append(_assistant(message, names))
        else:
            messages += _user(i, message, names, fetched)
    return messages


def _assistant(message: InputMessage, names: dict[str, str]) -> dict[str, Any]:
    blocks = message.content if isinstance(message.content, list) else []
    text = "".join(block.text for block in blocks if isinstance(block, TextBlock))
    calls = [
        {
            "id": block.id,
            "type": "function",
            "function": {
                "name": block.name,
                "arguments": json.dumps(block.input, separators=(",", ":"), ensure_ascii=False),
            },
        }
        for block in blocks
        if isinstance(block, ToolUseBlock)
    ]
    names.update((call["id"], call["function"]["name"]) for call in calls)
    out: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        out["tool_calls"] = calls
    else:
        out["content"] = text
    return out


def _user(
    index: int, message: InputMessage, names: dict[str, str], fetched: Mapping[str, str]
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(message.content if isinstance(message.content, list) else []):
        if isinstance(block, ToolResultBlock):
            name = names.get(block.tool_use_id)
            if name is None:
                raise invalid_request(
                    f"tool_result's tool_use_id '{block.tool_use_id}' matches no tool_use block "
                    "of an earlier assistant message",
                    f"messages.{index}.content.{j}.tool_use_id",
                )
            text, images = _result_content(block, fetched)
            results.append(
                {"role": "tool", "tool_call_id": block.tool_use_id, "name": name, "content": text}
            )
            if images:
                parts.append({"type": "text", "text": f"Images of the result of {name}:"})
                parts += images
        elif isinstance(block, TextBlock):
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock):
            parts.append({"type": "image_url", "image_url": {"url": image_url(block, fetched)}})
    return [*results, {"role": "user", "content": parts}] if parts else results


def _result_content(
    block: ToolResultBlock, fetched: Mapping[str, str]
) -> tuple[str, list[dict[str, Any]]]:
    """A tool result's text (marked when it failed) and its images as chat image parts."""
    content = block.content or ""
    if isinstance(content, str):
        text, images = content, []
    else:
        text = "\n".join(part.text for part in content if isinstance(part, TextBlock))
        images = [
            {"type": "image_url", "image_url": {"url": image_url(part, fetched)}}
            for part in content
            if isinstance(part, ImageBlock)
        ]
    return (ERROR_PREFIX + text if block.is_error else text), images


def image_urls(body: MessagesInput) -> list[str]:
    """The URLs of the request's `url` image sources, each once, in order."""
    urls: dict[str, None] = {}
    for block in image_blocks(body):
        if not isinstance(block.source, Base64Source):
            urls[block.source.url] = None
    return list(urls)


def image_blocks(body: MessagesInput) -> list[ImageBlock]:
    """Every image block, tool results' included."""
    found: list[ImageBlock] = []
    for message in body.messages:
        for block in message.content if isinstance(message.content, list) else []:
            if isinstance(block, ImageBlock):
                found.append(block)
            elif isinstance(block, ToolResultBlock) and isinstance(block.content, list):
                found += [part for part in block.content if isinstance(part, ImageBlock)]
    return found
