"""The route of `POST /v1/creative-agent/tools/execute` (Sogni envelope and error shape)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sogni_intelligence.api.auth import CurrentKey
from sogni_intelligence.api.errors import SogniRoute
from sogni_intelligence.api.tools_execute import serving
from sogni_intelligence.api.tools_execute.protocol import ExecuteToolBody

router = APIRouter(route_class=SogniRoute, tags=["tools"])


@router.post("/v1/creative-agent/tools/execute")
async def execute_tool(body: ExecuteToolBody, request: Request, key: CurrentKey) -> JSONResponse:
    data = await serving.execute_tool(request, key.id, body)
    return JSONResponse({"status": "success", "data": data})
