"""Routes of `POST /v1/messages` and `POST /v1/messages/count_tokens` (Anthropic Messages API).

Keys come as `x-api-key` (as well as the other headers); `anthropic-version` is accepted and
ignored: there is one version of this API here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from sogni_intelligence.api.auth import CurrentKey
from sogni_intelligence.api.disconnects import unless_disconnected
from sogni_intelligence.api.messages.errors import AnthropicRoute, anthropic_error
from sogni_intelligence.api.messages.events import Event, assemble, with_pings
from sogni_intelligence.api.messages.protocol import (
    AnthropicErrorResponse,
    CountTokensResponse,
    MessagesInput,
    MessagesRequest,
)
from sogni_intelligence.api.messages.serving import MessagesService
from sogni_intelligence.api.sse import HEARTBEAT_S, SSE_HEADERS, data_frame
from sogni_intelligence.api.state import server_of
from sogni_intelligence.errors import ServiceError

log = logging.getLogger(__name__)

router = APIRouter(route_class=AnthropicRoute, tags=["messages"])
REFUSED: dict[int | str, dict[str, Any]] = {
    400: {
        "model": AnthropicErrorResponse,
        "description": "The request is not what the route takes.",
    }
}


@router.post("/v1/messages", response_model=None, responses=REFUSED)
async def create_message(body: MessagesRequest, request: Request, key: CurrentKey) -> Response:
    server = server_of(request)
    await server.usage.admit_tokens(key)
    events = await MessagesService(server.chat).open(body, key.id)
    if not body.stream:
        message = await unless_disconnected(request, _assembled(events))
        return JSONResponse(message) if message is not None else Response(status_code=499)
    # A disconnect closes the stream and so the turn; media jobs it started go on.
    return StreamingResponse(
        _sse(with_pings(events, HEARTBEAT_S)), media_type="text/event-stream", headers=SSE_HEADERS
    )


@router.post("/v1/messages/count_tokens", responses=REFUSED)
async def count_message_tokens(
    body: MessagesInput, request: Request, key: CurrentKey
) -> CountTokensResponse:
    """The prompt's tokens, counted by the model's own tokenizer where the engine runs here,
    estimated for a model served only by OpenAI-compatible upstreams."""
    count = await MessagesService(server_of(request).chat).count_tokens(body, key.id)
    return CountTokensResponse(input_tokens=count)


async def _assembled(events: AsyncIterator[Event]) -> dict[str, Any]:
    async with aclosing(events):  # type: ignore[type-var]
        return await assemble(events)


def event_frame(event: Event) -> str:
    return f"event: {event['type']}\n{data_frame(event)}"


async def _sse(events: AsyncIterator[Event]) -> AsyncIterator[str]:
    """The events as SSE frames; a failure after the first is an `error` event."""
    try:
        async for event in events:
            yield event_frame(event)
    except ServiceError as exc:
        yield event_frame(anthropic_error(exc))
    except Exception as exc:
        log.exception("the message stream failed", exc_info=exc)
        yield event_frame(anthropic_error(ServiceError("internal server error", 500)))
    finally:
        await events.aclose()  # type: ignore[attr-defined]
