"""How many tokens a chat request's prompt takes.

An engine that runs the model here (the embedded llama.cpp, alone or in a pool) counts exactly,
with the model's tokenizer and chat template. An OpenAI-compatible upstream has no standard way
to tokenize, so for a model served only by upstreams the count is an estimate: about four
characters of text a token, a few tokens of template per message, and a fixed sum per image.
"""

from __future__ import annotations

import json
import math
from typing import Any

from sogni_intelligence.llm.protocol import ChatEngine, ChatRequest, CountsTokens

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4
TOKENS_PER_IMAGE = 256


async def prompt_tokens(engine: ChatEngine, request: ChatRequest) -> int:
    if isinstance(engine, CountsTokens):
        counted = await engine.count_prompt_tokens(request)
        if counted is not None:
            return counted
    return estimate_prompt_tokens(request)


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """The estimate for engines that cannot count (see the module's note)."""
    chars = len(json.dumps(request.get("tools") or [], ensure_ascii=False))
    images = 0
    messages = request.get("messages") or []
    for message in messages:
        content: Any = message.get("content") or ""
        if isinstance(content, list):
            chars += sum(len(part.get("text") or "") for part in content)
            images += sum(1 for part in content if part.get("type") == "image_url")
        else:
            chars += len(str(content))
        for call in message.get("tool_calls") or []:
            chars += len(call["function"]["name"]) + len(call["function"].get("arguments") or "")
    text = math.ceil(chars / CHARS_PER_TOKEN)
    return text + TOKENS_PER_MESSAGE * len(messages) + TOKENS_PER_IMAGE * images
