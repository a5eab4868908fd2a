"""Running a composition tool for `tools/execute`: only the six composition tools are allowed,
argument errors become 400s that name the argument, and other tool failures map to the HTTP
status a client can act on."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import Request
from pydantic import ValidationError

from sogni_intelligence.api.state import server_of
from sogni_intelligence.api.tools_execute.protocol import ExecuteToolBody
from sogni_intelligence.errors import ServiceError, invalid_request
from sogni_intelligence.tools.base import ToolContext, execute
from sogni_intelligence.tools.catalog import CATALOG
from sogni_intelligence.tools.content_filter import requested
from sogni_intelligence.tools.media_context import MediaContext

COMPOSITION_TOOLS = tuple(name for name, tool in CATALOG.items() if tool.kind == "composition")

# error_type of a failed tool -> (HTTP status, OpenAI error type); anything else is a 500.
_STATUS: dict[str, tuple[int, str]] = {
    "PARAMETER_INVALID": (400, "invalid_request_error"),
    "CONTENT_FILTERED": (400, "invalid_request_error"),
    "MODEL_UNAVAILABLE": (503, "server_error"),
}


def _argument_error(exc: ValidationError) -> ServiceError:
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    param = f"arguments.{location}" if location else "arguments"
    return invalid_request(f"{param}: {first['msg']}", param, "invalid_tool_arguments")


async def execute_tool(request: Request, owner: str, body: ExecuteToolBody) -> dict[str, Any]:
    """The `data` object of a successful call: `{toolCallId, tool, result, message}`."""
    if body.tool not in COMPOSITION_TOOLS:
        raise invalid_request(
            f"Tool '{body.tool}' cannot run here; tools/execute runs only "
            f"{', '.join(COMPOSITION_TOOLS)}.",
            "tool",
            "unsupported_tool",
        )
    tool = CATALOG[body.tool]
    arguments = body.arguments or {}
    try:
        tool.args.model_validate(arguments)
    except ValidationError as exc:
        raise _argument_error(exc) from exc
    ctx = ToolContext(
        owner=owner,
        media=MediaContext(),
        store=server_of(request).assets,
        services=server_of(request).tool_services,
        safe_content_filter=requested(body.safe_content_filter),
    )
    result = await execute(tool, arguments, ctx)
    if not result["ok"]:
        status, kind = _STATUS.get(result["error_type"], (500, "server_error"))
        raise ServiceError(result["message"], status, kind, result["error_type"].lower())
    return {
        "toolCallId": "call_" + secrets.token_hex(12),
        "tool": tool.name,
        "result": result,
        "message": None,
    }
