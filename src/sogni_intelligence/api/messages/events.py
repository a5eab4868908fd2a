"""The chat-completion chunks of a turn as the Messages API's stream events, and those events
assembled into the message a plain response returns (one path for both, as the chat route has).

Stop sequences are watched here rather than by the engine, which drops the sequence it stopped
at without saying which one it was: text that may begin one is held back until it cannot.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sogni_intelligence.llm.protocol import Chunk

Event = dict[str, Any]
PING: Event = {"type": "ping"}
#: The fields of a turn's closing chunk that carry the hosted tools' work (Sogni extensions).
EXTRAS = ("sogni_tool_results", "creative_workflows")
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def stop_reason(finish_reason: str | None) -> str:
    """A chat `finish_reason` as a `stop_reason` (anything else ended the turn normally)."""
    return _STOP_REASONS.get(finish_reason or "stop", "end_turn")


class StopWatch:
    """Cuts streamed text at the first of the stop sequences."""

    def __init__(self, sequences: list[str]) -> None:
        self.sequences = sequences
        self.held = ""

    def feed(self, text: str) -> tuple[str, str | None]:
        """The text that can be shown now, and the stop sequence once one has appeared."""
        if not self.sequences:
            return text, None
        text = self.held + text
        found = [(text.find(s), s) for s in self.sequences if s in text]
        if found:
            at, sequence = min(found)
            self.held = ""
            return text[:at], sequence
        keep = max(
            (n for s in self.sequences for n in range(1, len(s)) if text.endswith(s[:n])),
            default=0,
        )
        self.held = text[len(text) - keep :]
        return text[: len(text) - keep], None

    def flush(self) -> str:
        held, self.held = self.held, ""
        return held


class MessageEvents:
    """One message's events, from `message_start` to `message_stop`.

    `prompt_tokens` counts the prompt when the turn is cut at a stop sequence before the
    engine reported its usage."""

    def __init__(
        self,
        message_id: str,
        model: str,
        stop_sequences: list[str],
        prompt_tokens: Callable[[], Awaitable[int]],
    ) -> None:
        self.message_id = message_id
        self.model = model
        self.watch = StopWatch(stop_sequences)
        self.prompt_tokens = prompt_tokens
        self.index = -1  # the open block's index
        self.open: tuple[str, int] | None = None  # ("text", -1) or ("tool_use", call index)
        self.finish: str | None = None
        self.usage: dict[str, Any] | None = None
        self.extras: dict[str, Any] = {}
        self.pieces = 0  # text chunks: a token each from llama.cpp and OpenAI-style servers

    async def events(self, chunks: AsyncIterator[Chunk | str]) -> AsyncIterator[Event]:
        """The events of `chunks`; strings in it (tool progress) become pings."""
        yield {
            "type": "message_start",
            "message": {
                "id": self.message_id,
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            },
        }
        yield PING
        stopped_at: str | None = None
        async for chunk in chunks:
            if isinstance(chunk, str):
                yield PING
                continue
            if chunk.get("usage"):
                self.usage = chunk["usage"]
            self.extras.update((k, chunk[k]) for k in EXTRAS if k in chunk)
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    self.pieces += 1
                    text, stopped_at = self.watch.feed(delta["content"])
                    for event in self._text(text):
                        yield event
                    if stopped_at is not None:
                        break
                for call in delta.get("tool_calls") or []:
                    for event in self._tool_call(call):
                        yield event
                self.finish = choice.get("finish_reason") or self.finish
            if stopped_at is not None:
                break  # the caller closes `chunks`, which stops the generation
        if stopped_at is None:
            for event in self._text(self.watch.flush()):
                yield event
        for event in self._close():
            yield event
        yield await self._delta(stopped_at)
        yield {"type": "message_stop"}

    def _start(self, kind: str, key: int, block: dict[str, Any]) -> list[Event]:
        events = self._close()
        self.index += 1
        self.open = (kind, key)
        return [
            *events,
            {"type": "content_block_start", "index": self.index, "content_block": block},
        ]

    def _close(self) -> list[Event]:
        if self.open is None:
            return []
        self.open = None
        return [{"type": "content_block_stop", "index": self.index}]

    def _text(self, text: str) -> list[Event]:
        if not text:
            return []
        events = (
            []
            if self.open == ("text", -1)
            else self._start("text", -1, {"type": "text", "text": ""})
        )
        delta = {"type": "text_delta", "text": text}
        return [*events, {"type": "content_block_delta", "index": self.index, "delta": delta}]

    def _tool_call(self, fragment: dict[str, Any]) -> list[Event]:
        """A streamed call: its first fragment (id and name) opens a `tool_use` block, the
        arguments that follow are its `partial_json`."""
        key = int(fragment.get("index", 0))
        function = fragment.get("function") or {}
        events: list[Event] = []
        if self.open != ("tool_use", key):
            block = {
                "type": "tool_use",
                "id": fragment.get("id") or "",
                "name": function.get("name") or "",
                "input": {},
            }
            events = self._start("tool_use", key, block)
        if function.get("arguments"):
            delta = {"type": "input_json_delta", "partial_json": function["arguments"]}
            events.append({"type": "content_block_delta", "index": self.index, "delta": delta})
        return events

    async def _delta(self, stopped_at: str | None) -> Event:
        if stopped_at is not None or self.usage is None:
            usage = {"input_tokens": await self.prompt_tokens(), "output_tokens": self.pieces}
        else:
            usage = {
                "input_tokens": int(self.usage.get("prompt_tokens") or 0),
                "output_tokens": int(self.usage.get("completion_tokens") or 0),
            }
        reason = "stop_sequence" if stopped_at is not None else stop_reason(self.finish)
        return {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": stopped_at},
            "usage": usage,
            **self.extras,
        }


async def assemble(events: AsyncIterator[Event]) -> dict[str, Any]:
    """The message the events describe, as a plain (non-stream) response returns it."""
    message: dict[str, Any] = {}
    arguments: dict[int, str] = {}
    async for event in events:
        kind = event["type"]
        if kind == "message_start":
            message = dict(event["message"])
            message["content"] = []
        elif kind == "content_block_start":
            message["content"].append(dict(event["content_block"]))
        elif kind == "content_block_delta":
            delta = event["delta"]
            if delta["type"] == "text_delta":
                message["content"][event["index"]]["text"] += delta["text"]
            else:
                arguments[event["index"]] = (
                    arguments.get(event["index"], "") + delta["partial_json"]
                )
        elif kind == "message_delta":
            message.update(event["delta"])
            message["usage"] = event["usage"]
            message.update((k, event[k]) for k in EXTRAS if k in event)
    for index, text in arguments.items():
        message["content"][index]["input"] = _arguments(text)
    return message


def _arguments(text: str) -> dict[str, Any]:
    """A call's input; arguments that are no JSON object (a model that wrote them badly)
    become an empty one, as a client could not read them either."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def with_pings(events: AsyncIterator[Event], every_s: float) -> AsyncIterator[Event]:
    """`events`, with a ping whenever none came for `every_s` (long hosted-tool work), so that
    clients and proxies keep the connection."""
    pending: asyncio.Future[Event] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({pending}, timeout=every_s)
            if not done:
                yield PING
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield event
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
        await events.aclose()  # type: ignore[attr-defined]
