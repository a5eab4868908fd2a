"""The Messages API served by the chat-completions service: the request is translated into the
chat completion it means, runs the same way (engine, grammars, agent loop with hosted tools),
and the chunks come back as Messages events."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import secrets
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from sogni_intelligence.api.chat_completions.serving import (
    AgentTurn,
    ChatCompletionsService,
    PreparedChat,
)
from sogni_intelligence.api.messages.events import Event, MessageEvents
from sogni_intelligence.api.messages.protocol import MessagesInput, MessagesRequest
from sogni_intelligence.api.messages.translate import chat_request, image_blocks, image_urls
from sogni_intelligence.errors import invalid_request
from sogni_intelligence.llm.protocol import ChatRequest, Chunk
from sogni_intelligence.llm.tokens import prompt_tokens
from sogni_intelligence.media.fetch import fetch_media


class MessagesService:
    def __init__(self, chat: ChatCompletionsService) -> None:
        self.chat = chat

    async def open(self, body: MessagesRequest, owner: str) -> AsyncIterator[Event]:
        """The message's events. The turn has started when this returns, so a request the
        engine refuses raises here, before any response is sent."""
        prepared = await self._prepare(body, owner)
        chunks: AsyncIterator[Chunk] | AsyncIterator[Chunk | str]
        if prepared.loop:
            turn = AgentTurn(self.chat, prepared)
            chunks = turn.stream(await turn.session(owner, []))
        else:
            chunks = self.chat.stream(prepared, owner)
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            first = None

        async def counted() -> int:
            return await prompt_tokens(prepared.entry.engine, prepared.engine_request)

        message = MessageEvents(
            "msg_" + secrets.token_hex(12), prepared.entry.id, body.stop_sequences or [], counted
        )
        return _events(message, first, chunks)

    async def count_tokens(self, body: MessagesInput, owner: str) -> int:
        """The prompt the first round would see: with hosted tools, the loop offers them."""
        prepared = await self._prepare(body, owner)
        request: ChatRequest = prepared.engine_request
        if prepared.loop:
            tools = prepared.client_tools + [t.definition() for t in prepared.hosted.values()]
            request = {**request, "tools": tools, "tool_choice": prepared.tool_choice}
        return await prompt_tokens(prepared.entry.engine, request)

    async def _prepare(self, body: MessagesInput, owner: str) -> PreparedChat:
        count = len(image_blocks(body))
        if count > self.chat.max_images:
            raise invalid_request(f"at most {self.chat.max_images} images per request", "messages")
        fetched = await self._fetch(image_urls(body), owner)
        return await self.chat.prepare(chat_request(body, fetched))

    async def _fetch(self, urls: list[str], owner: str) -> dict[str, str]:
        """Each image URL's bytes as a data URI, fetched behind the SSRF guard (our own media
        URLs are read from the asset store)."""
        if not urls:
            return {}
        policy = dataclasses.replace(self.chat.fetch_policy, max_bytes=self.chat.limits.max_bytes)
        fetched = await asyncio.gather(
            *(
                fetch_media(
                    url, policy=policy, store=self.chat.agent.assets, owner=owner, kinds=("image",)
                )
                for url in urls
            )
        )
        return {
            url: f"data:{media.sniffed.mime};base64,{base64.b64encode(media.data).decode()}"
            for url, media in zip(urls, fetched, strict=True)
        }


async def _events(
    message: MessageEvents,
    first: Chunk | str | None,
    rest: AsyncIterator[Chunk] | AsyncIterator[Chunk | str],
) -> AsyncIterator[Event]:
    """The events of the turn's chunks; closing this (or a stop sequence) ends the turn."""
    async with aclosing(rest):  # type: ignore[type-var]
        async for event in message.events(_chunks(first, rest)):
            yield event


async def _chunks(
    first: Chunk | str | None, rest: AsyncIterator[Chunk] | AsyncIterator[Chunk | str]
) -> AsyncIterator[Any]:
    if first is not None:
        yield first
    async for chunk in rest:
        yield chunk
