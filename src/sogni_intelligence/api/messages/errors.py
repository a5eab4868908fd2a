"""Errors of the Anthropic routes in Anthropic's shape, `{"type": "error", "error": {"type",
"message"}}`, which the Anthropic SDKs read: the error type follows the status, as theirs does."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from sogni_intelligence.api.errors import error_headers, http_error_of, invalid_request_of
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


class AnthropicRoute(APIRoute):
    """A route whose every failure, even an unexpected one, answers in Anthropic's shape."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ServiceError as exc:
                return anthropic_error_response(exc)
            except RequestValidationError as exc:
                return anthropic_error_response(invalid_request_of(exc))
            except StarletteHTTPException as exc:
                return anthropic_error_response(http_error_of(exc))
            except Exception as exc:
                log.exception("unhandled error", exc_info=exc)
                return anthropic_error_response(ServiceError("internal server error", 500))

        return handle
