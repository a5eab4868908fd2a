"""Tool calls and JSON output on engines whose chat template cannot enforce them.

llama.cpp parses tool calls only with a tool-capable chat template and never enforces
`tool_choice: required` or a named function. This module rewrites such a request before it
reaches the engine (grammar, tool instructions, flattened tool turns) and turns the generated
text back into OpenAI `tool_calls` chunks. A forced choice gets a grammar of calls only; `auto`
gets one of free text in which a call, once opened, must be a valid one.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from sogni_intelligence.llm.grammar import (
    SPECIAL_TOKEN,
    calls_grammar,
    json_grammar,
    text_or_calls_grammar,
)
from sogni_intelligence.llm.protocol import ChatRequest, Chunk
from sogni_intelligence.llm.text_calls import CALL_ANYWHERE, CALL_FIRST, CallReader

MAX_PARALLEL_CALLS = 4
FULL_LISTING_CHARS = 6000
CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
#: How a call is written as text, as the tool prompt and error messages show it.
CALL_FORM = f'{CALL_OPEN}{{"name": <function name>, "arguments": <object>}}{CALL_CLOSE}'
_ARGUMENT_FRAGMENT = 24

Mode = Literal["plain", "forced", "sniff"]


@dataclass
class Plan:
    request: ChatRequest
    mode: Mode = "plain"
    tool_names: set[str] = field(default_factory=set)


def plan(request: ChatRequest, native_tools: bool, end_of_turn: str | None = None) -> Plan:
    """Decide how the engine serves `request` and return the request it should receive.

    `end_of_turn` is the model's end-of-turn special token; without one (a vocabulary whose
    end token a grammar cannot name) a free reply with tools is read but not constrained."""
    req = dict(request)
    tools: list[dict[str, Any]] = req.pop("tools", None) or []
    choice = req.pop("tool_choice", None) or ("auto" if tools else "none")
    parallel = req.pop("parallel_tool_calls", None)
    response_format = req.pop("response_format", None) or {"type": "text"}

    if response_format["type"] == "json_object":
        req["grammar"] = json_grammar({"type": "object"})
    elif response_format["type"] == "json_schema":
        req["grammar"] = json_grammar(response_format["json_schema"]["schema"])

    # A JSON answer's grammar leaves no room for a written call: the tools would only crowd
    # the prompt.
    written_calls_impossible = "grammar" in req and not native_tools and choice == "auto"
    if not tools or choice == "none" or written_calls_impossible:
        return Plan(_with_plain_history(req) if not native_tools else req)

    if isinstance(choice, dict) or choice == "required":
        chosen = tools
        if isinstance(choice, dict):
            chosen = [t for t in tools if t["function"]["name"] == choice["function"]["name"]]
        # Several calls only when asked for: tiny models otherwise invent extra calls.
        max_calls = MAX_PARALLEL_CALLS if parallel is True and choice == "required" else 1
        req = _with_plain_history(req) if not native_tools else req
        req["messages"] = _with_tool_instructions(req["messages"], chosen, forced=True)
        req["grammar"] = calls_grammar(chosen, max_calls)
        return Plan(req, "forced", {t["function"]["name"] for t in chosen})

    if native_tools:
        req["tools"] = tools
        req["tool_choice"] = "auto"
        if parallel is not None:
            req["parallel_tool_calls"] = parallel
        return Plan(req)

    req = _with_plain_history(req)
    req["messages"] = _with_tool_instructions(req["messages"], tools, forced=False)
    if end_of_turn is not None and SPECIAL_TOKEN.fullmatch(end_of_turn):
        # The model may answer or call; a call it starts must be finished as a valid one.
        max_calls = MAX_PARALLEL_CALLS if parallel is True else 1
        req["grammar"] = text_or_calls_grammar(
            tools, max_calls, CALL_OPEN, CALL_CLOSE, CALL_ANYWHERE, CALL_FIRST, end_of_turn
        )
    return Plan(req, "sniff", {t["function"]["name"] for t in tools})


def _tool_listing(tools: list[dict[str, Any]]) -> str:
    """Each tool with its schema; a line per tool (name, required arguments, first sentence)
    when the schemas would crowd a small context. A forced call's grammar still holds the
    schema, and a call with bad arguments gets an error that names them."""
    full = "\n".join(
        json.dumps(
            {
                "name": t["function"]["name"],
                "description": t["function"].get("description", ""),
                "parameters": t["function"].get("parameters") or {},
            },
            separators=(",", ":"),
        )
        for t in tools
    )
    if len(full) <= FULL_LISTING_CHARS:
        return full
    lines = []
    for tool in tools:
        function = tool["function"]
        parameters = function.get("parameters") or {}
        required = set(parameters.get("required") or [])
        names = [n for n in parameters.get("properties") or {} if n in required]
        purpose = (function.get("description") or "").split(". ")[0].rstrip(".")
        lines.append(f"{function['name']}({', '.join(names)}): {purpose}")
    return "\n".join(lines)


def _with_tool_instructions(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]], forced: bool
) -> list[dict[str, Any]]:
    listing = _tool_listing(tools)
    if forced:
        how = (
            "Answer only with a JSON list of calls, each "
            '{"name": <function name>, "arguments": <object>}.'
        )
    else:
        how = f"To call a function, write {CALL_FORM}; otherwise answer normally."
    note = f"You can call these functions:\n{listing}\n{how}"
    if messages and messages[0].get("role") == "system":
        first = dict(messages[0])
        first["content"] = f"{first.get('content') or ''}\n\n{note}".strip()
        return [first, *messages[1:]]
    return [{"role": "system", "content": note}, *messages]


def _with_plain_history(req: ChatRequest) -> ChatRequest:
    """Rewrite assistant tool calls and tool results as text for a template without tools."""
    messages = []
    for message in req["messages"]:
        if message["role"] == "assistant" and message.get("tool_calls"):
            calls = "".join(
                CALL_OPEN
                + json.dumps(
                    {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}
                )
                + CALL_CLOSE
                for c in message["tool_calls"]
            )
            messages.append(
                {"role": "assistant", "content": (message.get("content") or "") + calls}
            )
        elif message["role"] == "tool":
            label = message.get("name") or message.get("tool_call_id") or "tool"
            messages.append(
                {"role": "user", "content": f"Result of {label}:\n{message.get('content') or ''}"}
            )
        else:
            messages.append(message)
    return {**req, "messages": messages}


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def new_call_id() -> str:
    return "call_" + secrets.token_hex(12)


def tool_call_deltas(calls: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Deltas for `(name, arguments_json)` calls: id and name first, then argument fragments."""
    deltas: list[dict[str, Any]] = []
    for index, (name, arguments) in enumerate(calls):
        deltas.append(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": new_call_id(),
                        "type": "function",
                        "function": {"name": name, "arguments": ""},
                    }
                ]
            }
        )
        for start in range(0, len(arguments), _ARGUMENT_FRAGMENT):
            fragment = arguments[start : start + _ARGUMENT_FRAGMENT]
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
    return deltas


def _parse_forced(text: str) -> list[tuple[str, str]] | None:
    try:
        calls = json.loads(text)
    except ValueError:
        return None
    return [(c["name"], _compact(c["arguments"])) for c in calls]


def _with_delta(template: Chunk, delta: dict[str, Any], finish: str | None = None) -> Chunk:
    return {**template, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def apply(plan: Plan, chunks: AsyncGenerator[Chunk, None]) -> AsyncGenerator[Chunk, None]:
    """`chunks` with generated calls turned into `tool_calls` deltas; a plain plan's chunks
    as they are (no layer in between: it would cost a step per token)."""
    return chunks if plan.mode == "plain" else _calls_applied(plan, chunks)


async def _calls_applied(plan: Plan, chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    # A forced reply is all call; a free one is read as it comes (see `text_calls`).
    reader = CallReader(plan.tool_names) if plan.mode == "sniff" else None
    forced = ""
    async for chunk in chunks:
        choices = chunk.get("choices") or []
        if not choices:
            yield chunk
            continue
        delta = choices[0].get("delta") or {}
        finish = choices[0].get("finish_reason")
        text = delta.get("content")
        if text and reader is None:
            forced += text
        elif text and reader is not None:
            visible = reader.feed(text)
            if visible:
                yield _with_delta(chunk, {"content": visible})
        elif not finish:
            yield chunk
        if finish:
            for out in _finish(chunk, finish, reader, forced):
                yield out
            forced = ""


def _finish(template: Chunk, finish: str, reader: CallReader | None, forced: str) -> list[Chunk]:
    if reader is None:
        calls, text = _parse_forced(forced) or [], forced
    else:
        reading = reader.finish()
        calls = reading.calls
        text = reading.unread.text if reading.unread else reading.text
    if calls:
        out = [_with_delta(template, delta) for delta in tool_call_deltas(calls)]
        return [*out, _with_delta(template, {}, "tool_calls")]
    out = [_with_delta(template, {"content": text})] if text else []
    return [*out, _with_delta(template, {}, finish)]
