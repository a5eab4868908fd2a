"""What every LLM engine offers the rest of the server.

Engines take an OpenAI-shaped chat request (already validated) and yield OpenAI
`chat.completion.chunk` dicts. Closing the iterator cancels the generation: engines always
stream internally so that a disconnect or a cancel frees the slot at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from sogni_intelligence.errors import ServiceError

Chunk = dict[str, Any]
ChatRequest = dict[str, Any]


@dataclass(frozen=True)
class EngineInfo:
    """What `/v1/models` shows about the engine behind an id."""

    engine: str
    model: str
    vision: bool
    native_tools: bool
    slots: int | None = None
    url: str | None = None  # an upstream's address, without credentials


class EngineError(ServiceError):
    """An engine failure or a request the engine refused."""


class EngineUnavailable(EngineError):
    """The engine could not take the request, through no fault of the request, so another
    engine serving the same model may answer it. `down`: it cannot be reached at all."""

    def __init__(self, message: str, down: bool = False) -> None:
        super().__init__(message, 502, "upstream_error")
        self.down = down


class ChatEngine(Protocol):
    info: EngineInfo

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        """Yield chunks for `request`; the last ones carry `finish_reason` and `usage`."""
        ...


class PoolableEngine(ChatEngine, Protocol):
    """An engine that can share a model's requests with others: it says whether it is up."""

    async def probe(self) -> None:
        """Return when the engine can take requests now; raise `EngineUnavailable` if not."""
        ...


@runtime_checkable
class CountsTokens(Protocol):
    """An engine that can say how many tokens a request's prompt takes, with the model's own
    tokenizer and chat template (an upstream server need not offer that)."""

    async def count_prompt_tokens(self, request: ChatRequest) -> int | None:
        """The prompt's tokens, or None when no member that can count serves the model."""
        ...


def merge_tool_call(calls: dict[int, dict[str, Any]], fragment: dict[str, Any]) -> None:
    """Reassemble a streamed tool call from its fragments, keyed by their `index`."""
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
