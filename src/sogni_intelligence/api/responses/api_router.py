"""Routes of `/v1/responses` (errors in the OpenAI shape)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from sogni_intelligence.api.auth import CurrentKey
from sogni_intelligence.api.disconnects import unless_disconnected
from sogni_intelligence.api.responses.events import ResponseFolder
from sogni_intelligence.api.responses.protocol import CancelResponseBody, ResponsesRequest
from sogni_intelligence.api.responses.serving import (
    Prepared,
    ResponsesService,
    TurnEvent,
    frames_of,
    not_found,
    sse_frame,
)
from sogni_intelligence.api.sse import SSE_HEADERS
from sogni_intelligence.api.state import server_of
from sogni_intelligence.api.wire import MAX_DB_INT
from sogni_intelligence.errors import invalid_request
from sogni_intelligence.store.responses import ResponseStore

router = APIRouter(tags=["responses"])
BASE = "/v1/responses"


def _service(request: Request) -> ResponsesService:
    server = server_of(request)
    return ResponsesService(server.chat, server.chat_runs, ResponseStore(server.db))


def _sse(frames: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(frames, media_type="text/event-stream", headers=SSE_HEADERS)


@router.post(BASE, response_model=None)
async def create_response(body: ResponsesRequest, request: Request, key: CurrentKey) -> Response:
    server = server_of(request)
    service = _service(request)
    await server.usage.admit_tokens(key)
    prepared = await service.prepare(body, key.id)
    if body.background:
        await server.usage.admit_record(key)
        await service.start_background(prepared)
        saved = await service.saved(key.id, prepared.id)
        if body.stream:
            return _sse(service.follow(saved, -1))
        return JSONResponse(await service.view(saved))
    base, events = await service.answer(prepared)
    folder = ResponseFolder(base, background=False)
    batches = _answered(service, prepared, folder, events)
    if not body.stream:
        finished = await unless_disconnected(request, _drain(batches))
        if finished is None:
            return Response(status_code=499)
        return JSONResponse(folder.response())
    # The first batch before answering: a request the engine refuses gets a real 4xx.
    first = await anext(batches)
    return _sse(_encoded(first, batches))


async def _answered(
    service: ResponsesService,
    prepared: Prepared,
    folder: ResponseFolder,
    events: AsyncIterator[TurnEvent],
) -> AsyncIterator[list[dict[str, Any]]]:
    """The response's event batches; it is saved before its last batch goes out, so a client
    that reads the end can retrieve it at once."""
    async for batch in frames_of(folder, events):
        if folder.done:
            await service.save(prepared, folder.response(), None)
        yield batch


async def _drain(batches: AsyncIterator[list[dict[str, Any]]]) -> bool:
    async for _ in batches:
        pass
    return True


async def _encoded(
    first: list[dict[str, Any]], rest: AsyncIterator[list[dict[str, Any]]]
) -> AsyncIterator[bytes]:
    try:
        for event in first:
            yield sse_frame(event).encode()
        async for batch in rest:
            for event in batch:
                yield sse_frame(event).encode()
    finally:
        await rest.aclose()  # type: ignore[attr-defined]


@router.get(f"{BASE}/{{response_id}}", response_model=None)
async def get_response(
    response_id: str,
    request: Request,
    key: CurrentKey,
    stream: bool = False,
    starting_after: int | None = Query(None, ge=0, le=MAX_DB_INT),
) -> Response:
    """The response; with `stream=true` (a background response) its events after
    `starting_after`, replayed, then live until it ends."""
    service = _service(request)
    saved = await service.saved(key.id, response_id)
    if not stream:
        return JSONResponse(await service.view(saved))
    if saved.run_id is None:
        raise invalid_request(
            "Only background responses can be streamed again; this one was answered in its "
            "request.",
            "stream",
        )
    return _sse(service.follow(saved, -1 if starting_after is None else starting_after))


@router.post(f"{BASE}/{{response_id}}/cancel")
async def cancel_response(
    response_id: str, request: Request, key: CurrentKey, body: CancelResponseBody | None = None
) -> JSONResponse:
    service = _service(request)
    saved = await service.saved(key.id, response_id)
    reason = (body or CancelResponseBody()).reason
    return JSONResponse(await service.cancel(saved, reason))


@router.delete(f"{BASE}/{{response_id}}")
async def delete_response(response_id: str, request: Request, key: CurrentKey) -> JSONResponse:
    """Forget the response; a background one that is still running is cancelled first."""
    service = _service(request)
    saved = await service.saved(key.id, response_id)
    if saved.run_id is not None and (await service.view(saved))["status"] in (
        "queued",
        "in_progress",
    ):
        await service.cancel(saved, "the response was deleted")
    if not await service.store.delete(key.id, response_id):
        raise not_found()
    return JSONResponse({"id": response_id, "object": "response.deleted", "deleted": True})


@router.get(f"{BASE}/{{response_id}}/input_items")
async def list_input_items(
    response_id: str,
    request: Request,
    key: CurrentKey,
    order: Literal["asc", "desc"] = "desc",
    limit: int = Query(20, ge=1, le=100),
    after: str | None = Query(None, max_length=200),
) -> JSONResponse:
    """The request's own input items (newest first by default), a page after the item
    `after`."""
    saved = await _service(request).saved(key.id, response_id)
    items = list(saved.data["input"])
    if order == "desc":
        items.reverse()
    ids = [item["id"] for item in items]
    if after is not None:
        if after not in ids:
            raise invalid_request(f"no input item '{after}' in this response", "after")
        items = items[ids.index(after) + 1 :]
    page = items[:limit]
    return JSONResponse(
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(items) > limit,
        }
    )
