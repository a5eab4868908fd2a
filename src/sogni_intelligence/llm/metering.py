"""LLM metrics, taken where an engine's chunks come out: every engine (embedded, upstream,
each member of a pool) passes its stream through `metered`, so sync completions, streams,
agent rounds and durable chat runs are all counted the same way."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

from sogni_intelligence.llm.protocol import Chunk
from sogni_intelligence.observability.metrics import (
    LLM_COMPLETION_TOKENS,
    LLM_PROMPT_TOKENS,
    LLM_REQUESTS,
    LLM_SLOTS_BUSY,
    LLM_TOKENS_PER_SECOND,
    LLM_TTFT,
)

#: Delta fields that carry generated tokens (a role-only first chunk is not a token yet).
_GENERATED = ("content", "reasoning_content", "tool_calls")


def progress(chunk: Chunk) -> tuple[bool, bool]:
    """Whether the chunk carries generated text or a tool-call fragment, and whether a choice
    finished in it: one pass over its choices, as this runs once per token."""
    generated = finished = False
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta")
        if delta and not generated:
            generated = any(delta.get(name) for name in _GENERATED)
        finished = finished or bool(choice.get("finish_reason"))
    return generated, finished


def decode_rate(completion_tokens: int, first_s: float, last_s: float) -> float | None:
    """Tokens per second after the first token; None when there is nothing to measure."""
    if completion_tokens < 2 or last_s <= first_s:
        return None
    return (completion_tokens - 1) / (last_s - first_s)


def _count_usage(model: str, usage: dict[str, Any]) -> int:
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    LLM_PROMPT_TOKENS.labels(model).inc(prompt)
    LLM_COMPLETION_TOKENS.labels(model).inc(completion)
    return completion


async def metered(
    model: str, engine: str, chunks: AsyncGenerator[Chunk, None]
) -> AsyncIterator[Chunk]:
    """Pass `chunks` through, counting the request (ok once a choice finished, error on an
    exception, cancelled when the consumer left first), its tokens, time to first token and
    decoding speed, and holding a busy slot while it runs. Closing this closes `chunks`."""
    started = time.perf_counter()
    first: float | None = None
    last = started  # when the latest generated token came
    usage: dict[str, Any] | None = None
    finished = False
    outcome = "cancelled"
    busy = LLM_SLOTS_BUSY.labels(model, engine)
    busy.inc()
    try:
        async with aclosing(chunks):
            async for chunk in chunks:
                generated, finishing = progress(chunk)
                if generated:
                    last = time.perf_counter()
                    if first is None:
                        first = last
                        LLM_TTFT.labels(model).observe(first - started)
                finished = finished or finishing
                if chunk.get("usage"):
                    usage = chunk["usage"]
                yield chunk
        outcome = "ok"
    except Exception:
        outcome = "error"
        raise
    finally:
        busy.dec()
        if outcome == "cancelled" and finished:
            outcome = "ok"  # the consumer stopped after the answer was complete
        LLM_REQUESTS.labels(model, outcome).inc()
        if usage is not None:
            completion = _count_usage(model, usage)
            rate = decode_rate(completion, first, last) if first is not None else None
            if rate is not None:
                LLM_TOKENS_PER_SECOND.labels(model).observe(rate)
