"""Routes of `/v1/chat/runs`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from sogni_intelligence.api.auth import CurrentKey, readable_owner
from sogni_intelligence.api.billing import RequestBilling
from sogni_intelligence.api.chat_runs import serving
from sogni_intelligence.api.chat_runs.protocol import (
    CancelRunBody,
    ConfirmRunCostBody,
    StartRunBody,
)
from sogni_intelligence.api.errors import SogniRoute
from sogni_intelligence.api.record_lists import Offset, Scope, StatusFilter, listed
from sogni_intelligence.api.sse import SSE_HEADERS, After, cursor
from sogni_intelligence.api.state import server_of
from sogni_intelligence.runtime.chat_runs import CONFIRM_ENDPOINT

router = APIRouter(route_class=SogniRoute, tags=["chat runs"])
BASE = "/v1/chat/runs"


def _ok(data: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse({"status": "success", "data": data}, status)


@router.post(BASE)
async def start_run(
    body: StartRunBody,
    request: Request,
    key: CurrentKey,
    headers: RequestBilling,
    idempotency_key: str | None = Header(None, max_length=255),
) -> JSONResponse:
    serving.reject_inline_media(body)
    usage = server_of(request).usage
    await usage.admit_record(key)
    await usage.admit_tokens(key)
    runs = serving.runs_of(request)
    fork = None
    if body.fork_from is not None:
        echo, engine, media, fork = await serving.prepare_fork(request, key.id, body)
    else:
        echo, engine, media = await serving.prepare_run(server_of(request).chat, body)
    billing = headers.billing(body.token_type, body.billing_mode, body.app_source)
    echo.update({name: value for name, value in billing.items() if value is not None})
    record, replayed = await runs.start(
        key.id,
        {**echo, "idempotencyKey": idempotency_key},
        engine,
        media,
        None if idempotency_key is None else (idempotency_key, body.model_dump()),
        fork,
    )
    data: dict[str, Any] = {"run": await runs.public(record)}
    if replayed:
        data["idempotent"] = True
    return _ok(data, 200 if replayed else 202)


@router.get(BASE)
async def list_runs(
    request: Request,
    key: CurrentKey,
    offset: Offset = 0,
    limit: int = Query(20, ge=1, le=200),
    status: StatusFilter = None,
    scope: Scope = "own",
) -> JSONResponse:
    """Newest first; `next` is the offset of the following page, or null."""
    runs = serving.runs_of(request)
    records, next_offset = await listed(
        runs.deps.records, "chat_run", key, offset, limit, status, scope
    )
    return _ok({"runs": [await runs.public(r) for r in records], "next": next_offset})


@router.get(f"{BASE}/{{run_id}}")
async def get_run(run_id: str, request: Request, key: CurrentKey) -> JSONResponse:
    record = await serving.owned_run(request, readable_owner(key), run_id)
    return _ok({"run": await serving.runs_of(request).public(record)})


@router.get(f"{BASE}/{{run_id}}/events")
async def run_events(
    run_id: str, request: Request, key: CurrentKey, after: After = None
) -> JSONResponse:
    record = await serving.owned_run(request, readable_owner(key), run_id)
    runs = serving.runs_of(request)
    events = await runs.deps.records.events(record.id, cursor(after, None))
    return _ok({"events": [runs.public_event(e) for e in events]})


@router.get(f"{BASE}/{{run_id}}/events/stream")
async def stream_run_events(
    run_id: str,
    request: Request,
    key: CurrentKey,
    after: After = None,
    last_event_id: str | None = Header(None),
) -> StreamingResponse:
    record = await serving.owned_run(request, readable_owner(key), run_id)
    stream = await serving.event_stream(
        serving.runs_of(request), record.id, cursor(after, last_event_id)
    )
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)


@router.post(f"{BASE}/{{run_id}}/cancel")
async def cancel_run(
    run_id: str, request: Request, key: CurrentKey, body: CancelRunBody | None = None
) -> JSONResponse:
    runs = serving.runs_of(request)
    record = await serving.owned_run(request, readable_owner(key), run_id)
    record = await runs.cancel(record, (body or CancelRunBody()).reason)
    return _ok({"run": await runs.public(record)})


@router.post(f"{BASE}/{{run_id}}/confirm-cost")
async def confirm_run_cost(
    run_id: str,
    body: ConfirmRunCostBody,
    request: Request,
    key: CurrentKey,
    idempotency_key: str | None = Header(None, max_length=255),
) -> JSONResponse:
    runs = serving.runs_of(request)
    record = await serving.owned_run(request, key.id, run_id)
    done = await runs.deps.records.once(
        key.id,
        CONFIRM_ENDPOINT,
        idempotency_key,
        record.id,
        body.model_dump(),
        lambda: runs.confirm_cost(
            record, body.tool_call_id, body.decision, body.accepted_cost_preview, body.overrides
        ),
    )
    if done is None:
        return _ok({"run": await runs.public(record), "idempotent": True})
    return _ok({"run": await runs.public(done)})
