"""Error responses in the OpenAI shape `{"error": {"message", "type", "code", "param"}}`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from sogni_intelligence.errors import ServiceError
from sogni_intelligence.observability.http import request_id_of

log = logging.getLogger(__name__)

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def error_body(
    message: str, type: str, code: str | None = None, param: str | None = None
) -> dict[str, object]:
    return {"error": {"message": message, "type": type, "code": code, "param": param}}


def error_headers(exc: ServiceError) -> dict[str, str]:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return headers


def _retry_fields(exc: ServiceError) -> dict[str, int]:
    """The wait in the body as well, under both spellings clients read (the Sogni SDK takes
    `retryAfter`, OpenAI-style clients `retry_after`)."""
    if exc.retry_after is None:
        return {}
    return {"retry_after": exc.retry_after, "retryAfter": exc.retry_after}


def error_response(exc: ServiceError) -> JSONResponse:
    body = {**error_body(exc.message, exc.type, exc.code, exc.param), **_retry_fields(exc)}
    return JSONResponse(body, exc.status, headers=error_headers(exc))


def sogni_error_response(exc: ServiceError) -> JSONResponse:
    """The Sogni REST error shape (`status`, `message`, `errorCode`) that the Sogni SDK reads,
    with the OpenAI `error` object alongside, so either kind of client finds its fields."""
    body = {
        "status": "error",
        "message": exc.message,
        "errorCode": exc.status,
        "error": {"message": exc.message, "type": exc.type, "code": exc.code, "param": exc.param},
        **_retry_fields(exc),
    }
    return JSONResponse(body, exc.status, headers=error_headers(exc))


def shaped_route(
    respond: Callable[[ServiceError], Response], *, unexpected_too: bool = False
) -> type[APIRoute]:
    """A route class whose refusals answer through `respond` (its API's error shape):
    service errors, bodies FastAPI could not validate or read, and with `unexpected_too` any
    other failure as a 500 (else that is left to the app's own handler)."""

    class ShapedRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
            handler = super().get_route_handler()

            async def handle(request: Request) -> Response:
                try:
                    return await handler(request)
                except ServiceError as exc:
                    return respond(exc)
                except RequestValidationError as exc:
                    return respond(invalid_request_of(exc))
                except StarletteHTTPException as exc:
                    # FastAPI's own refusals, such as a body it cannot read.
                    return respond(http_error_of(exc))
                except Exception as exc:
                    if not unexpected_too:
                        raise
                    log.exception("unhandled error", exc_info=exc)
                    return respond(ServiceError("internal server error", 500))

            return handle

    return ShapedRoute


#: The routes whose errors use `sogni_error_response` (media, workflows, templates...).
SogniRoute = shaped_route(sogni_error_response)


def _param(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    # pydantic puts the union member's tag into the path; drop what is not a field name
    return ".".join(p for p in parts if not p.startswith(("function-", "tagged-union")))


def _body_problem(error: Mapping[str, Any]) -> str | None:
    """A sentence for a body that is not a JSON object at all; None for a bad field in one.

    FastAPI hands the validator the raw bytes when the Content-Type is not JSON, and reports
    bad JSON at the character where decoding stopped, so pydantic's own words would mislead.
    """
    loc = tuple(error.get("loc", ()))
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "it does not parse")
        return f"The request body is not valid JSON: {reason}."
    if loc != ("body",) or error.get("type") == "value_error":
        return None  # a bad field, or a rule across fields that says what is wrong itself
    if error.get("type") == "missing":
        return "The request needs a JSON object body (Content-Type: application/json)."
    if isinstance(error.get("input"), bytes | bytearray):
        return "The request body must be JSON sent with Content-Type: application/json."
    return "The request body must be a JSON object."


def invalid_request_of(exc: RequestValidationError) -> ServiceError:
    """The 400 for a request FastAPI could not validate, naming its first problem."""
    first = exc.errors()[0] if exc.errors() else {"msg": "invalid request", "loc": ()}
    problem = _body_problem(first)
    if problem is not None:
        return ServiceError(problem, 400, "invalid_request_error", "invalid_body")
    param = _param(tuple(first.get("loc", ())))
    message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
    if param:
        message = f"{param}: {message}"
    return ServiceError(message, 400, "invalid_request_error", None, param or None)


def http_error_of(exc: StarletteHTTPException) -> ServiceError:
    status = exc.status_code
    code = "request_too_large" if status == 413 else None
    return ServiceError(str(exc.detail), status, _TYPES.get(status, "server_error"), code)


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(invalid_request_of(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(http_error_of(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # This runs, and answers, outside the middleware that tags the other requests' log
        # lines and answers with their id.
        request_id = request_id_of(request.scope)
        log.exception("unhandled error", exc_info=exc, extra={"request_id": request_id})
        response = error_response(ServiceError("internal server error", 500, "server_error"))
        if request_id:
            response.headers["X-Request-Id"] = request_id
        return response
