"""Routes of `/v1/replay/records`: write, list and read RunRecords, each key its own."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from sogni_intelligence.api.auth import CurrentKey
from sogni_intelligence.api.errors import SogniRoute
from sogni_intelligence.api.replay.protocol import (
    RunRecordBody,
    millis,
    summary_view,
    written_view,
)
from sogni_intelligence.api.state import server_of
from sogni_intelligence.errors import ServiceError
from sogni_intelligence.runtime.replay_records import checked

router = APIRouter(route_class=SogniRoute, tags=["replay"])
BASE = "/v1/replay/records"


@router.post(BASE, status_code=201)
async def write_record(body: RunRecordBody, request: Request, key: CurrentKey) -> JSONResponse:
    server = server_of(request)
    record = checked(body.normalised(), server.settings.replay_record_max_bytes)
    stored = await server.replays.put(key.id, record)
    return JSONResponse(written_view(stored), 201)


@router.get(BASE)
async def list_records(
    request: Request, key: CurrentKey, limit: int = Query(50, ge=1, le=200)
) -> JSONResponse:
    stored = await server_of(request).replays.list(key.id, limit)
    return JSONResponse({"records": [summary_view(s) for s in stored]})


@router.get(f"{BASE}/{{run_id}}")
async def get_record(run_id: str, request: Request, key: CurrentKey) -> JSONResponse:
    stored = await server_of(request).replays.get(key.id, run_id)
    if stored is None:
        raise ServiceError("No such replay record.", 404, "not_found_error", "not_found")
    return JSONResponse({"record": stored.record, "createTime": millis(stored)[0]})
