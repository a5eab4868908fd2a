"""Errors of the Anthropic routes in Anthropic's shape, `{"type": "error", "error": {"type",
"message"}}`, which the Anthropic SDKs read: the error type follows the status, as theirs does."""

from __future__ import annotations

import logging
from typing import Any

from fastapi.responses import JSONResponse

from sogni_intelligence.api.errors import error_headers, shaped_route
from sogni_intelligence.errors import ServiceError

log = logging.getLogger(__name__)

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def anthropic_error(exc: ServiceError) -> dict[str, Any]:
    """The error body; any other 4xx is an invalid request, any other 5xx an API error."""
    fallback = "invalid_request_error" if exc.status < 500 else "api_error"
    return {
        "type": "error",
        "error": {"type": _TYPES.get(exc.status, fallback), "message": exc.message},
    }


def anthropic_error_response(exc: ServiceError) -> JSONResponse:
    return JSONResponse(anthropic_error(exc), exc.status, headers=error_headers(exc))


#: The Anthropic routes: every failure, even an unexpected one, in Anthropic's shape.
AnthropicRoute = shaped_route(anthropic_error_response, unexpected_too=True)
