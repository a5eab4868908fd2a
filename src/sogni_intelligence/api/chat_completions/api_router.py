"""Route of `POST /v1/chat/completions`."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from sogni_intelligence.agent.surfaces import surface_of
from sogni_intelligence.api.auth import CurrentKey
from sogni_intelligence.api.billing import RequestBilling
from sogni_intelligence.api.chat_completions.protocol import ChatCompletionRequest
from sogni_intelligence.api.chat_completions.serving import AgentTurn, ChatCompletionsService
from sogni_intelligence.api.disconnects import unless_disconnected
from sogni_intelligence.api.errors import error_body
from sogni_intelligence.api.sse import DONE, SSE_HEADERS, data_frame
from sogni_intelligence.api.state import server_of
from sogni_intelligence.errors import ServiceError
from sogni_intelligence.llm.protocol import Chunk
from sogni_intelligence.tools.template_tools import exposed_tools

router = APIRouter()


@router.post("/v1/chat/completions", response_model=None)
async def create_chat_completion(
    body: ChatCompletionRequest, request: Request, key: CurrentKey, headers: RequestBilling
) -> Response:
    server = server_of(request)
    await server.usage.admit_tokens(key)
    service: ChatCompletionsService = server.chat
    exposed = None
    if surface_of(body.sogni_tools) == "creative-agent":
        exposed = exposed_tools(await server.templates.exposed(key.id))
    prepared = await service.prepare(body, exposed)
    if prepared.loop:
        turn = AgentTurn(service, prepared)
        references = body.media_references or body.api_media_references or []
        billing = headers.billing(body.token_type, body.billing_mode, body.app_source)
        session = await turn.session(key.id, references, billing)
        if not body.stream:
            result = await unless_disconnected(request, turn.complete(session))
            return JSONResponse(result) if result is not None else Response(status_code=499)
        # A disconnect closes the stream and so cancels the loop; the media jobs it started
        # are durable workflows and go on.
        frames = turn.stream(session)
        return StreamingResponse(
            _sse(await anext(frames), frames), media_type="text/event-stream", headers=SSE_HEADERS
        )
    if not body.stream:
        result = await unless_disconnected(request, service.complete(prepared, key.id))
        return JSONResponse(result) if result is not None else Response(status_code=499)
    chunks = service.stream(prepared, key.id)
    # Pull the first chunk before answering, so a request the engine refuses gets a real
    # 4xx status instead of an error inside a 200 stream.
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = None
    return StreamingResponse(
        _sse(first, chunks), media_type="text/event-stream", headers=SSE_HEADERS
    )


async def _sse(
    first: Chunk | str | None, chunks: AsyncIterator[Chunk] | AsyncIterator[Chunk | str]
) -> AsyncIterator[str]:
    """Chunks as `data:` frames; strings are ready-made frames (comments)."""
    try:
        if first is not None:
            yield first if isinstance(first, str) else data_frame(first)
        async for chunk in chunks:
            yield chunk if isinstance(chunk, str) else data_frame(chunk)
    except ServiceError as exc:
        yield data_frame(error_body(exc.message, exc.type, exc.code, exc.param))
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
    yield DONE
