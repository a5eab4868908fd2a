"""Responses input items as chat messages, and a response's output as items of a later input.

The agent loop speaks chat messages; a Responses conversation is a list of typed items. A
message item becomes a message, consecutive `function_call` items become one assistant message
with `tool_calls`, and a `function_call_output` a `tool` message. Our `sogni_tool_call` output
items go back in as the hosted call and its result, so a continued conversation shows the model
what its tools did.
"""

from __future__ import annotations

import json
from typing import Any

from sogni_intelligence.errors import invalid_request

_ROLES = ("user", "system", "developer", "assistant")
_TEXT_PARTS = ("input_text", "output_text", "text")
#: Item kinds of the OpenAI API this server does not run (their tools are OpenAI's own).
_UNSUPPORTED = "only message, function_call, function_call_output and sogni_tool_call items"


def as_items(value: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The request's `input` as items: a string is one user message."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return value


def chat_messages(items: list[dict[str, Any]], offset: int = 0) -> list[dict[str, Any]]:
    """Chat-completions messages for `items`; a problem names `input[i]` (counted from
    `offset`, for items that follow a previous response's conversation)."""
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        param = f"input[{i - offset}]" if i >= offset else f"previous_response_id (item {i})"
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            messages.append(_message(item, param))
        elif kind in ("function_call", "sogni_tool_call"):
            call = {
                "id": _text(item, "call_id", param),
                "type": "function",
                "function": {
                    "name": _text(item, "name", param),
                    "arguments": _arguments(item.get("arguments"), param),
                },
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and kind == "function_call":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            if kind == "sogni_tool_call":
                result = json.dumps(item.get("result") or {"status": item.get("status")})
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
        elif kind == "function_call_output":
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": _text(item, "call_id", param),
                    "content": _output(item.get("output"), param),
                }
            )
        else:
            raise invalid_request(
                f"{param}: items of type {kind!r} are not supported; send {_UNSUPPORTED}",
                f"{param}.type",
            )
    return messages


def conversation_items(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A finished response's output as input items of the request that continues it."""
    kinds = ("message", "function_call", "sogni_tool_call")
    return [item for item in output if item.get("type") in kinds]


def _message(item: dict[str, Any], param: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in _ROLES:
        raise invalid_request(
            f"{param}.role must be one of {', '.join(_ROLES)}, not {role!r}", f"{param}.role"
        )
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise invalid_request(
            f"{param}.content must be a string or a list of content parts", f"{param}.content"
        )
    parts = [_part(part, f"{param}.content[{j}]") for j, part in enumerate(content)]
    return {"role": role, "content": parts}


def _part(part: Any, param: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in _TEXT_PARTS:
        return {"type": "text", "text": _text(part, "text", param)}
    if kind == "refusal":
        return {"type": "text", "text": _text(part, "refusal", param)}
    if kind == "input_image":
        if part.get("file_id"):
            raise invalid_request(
                f"{param}: file_id images are not supported; send image_url (a data URI or an "
                "http(s) URL)",
                f"{param}.file_id",
            )
        url = part.get("image_url")
        url = url.get("url") if isinstance(url, dict) else url
        if not isinstance(url, str) or not url:
            raise invalid_request(f"{param}.image_url is required", f"{param}.image_url")
        return {"type": "image_url", "image_url": {"url": url}}
    raise invalid_request(
        f"{param}: content parts of type {kind!r} are not supported; send input_text, "
        "output_text or input_image",
        f"{param}.type",
    )


def _text(item: dict[str, Any], name: str, param: str) -> str:
    value = item.get(name)
    if not isinstance(value, str):
        raise invalid_request(f"{param}.{name} must be a string", f"{param}.{name}")
    return value


def _arguments(value: Any, param: str) -> str:
    if value is None:
        return "{}"
    if not isinstance(value, str):
        raise invalid_request(f"{param}.arguments must be a string of JSON", f"{param}.arguments")
    return value


def _output(value: Any, param: str) -> str:
    """A function's output: a string, or text parts joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(
        isinstance(p, dict) and isinstance(p.get("text"), str) for p in value
    ):
        return "\n".join(p["text"] for p in value)
    raise invalid_request(
        f"{param}.output must be a string or a list of input_text parts", f"{param}.output"
    )
