"""Per-request metrics, the request id and one log line per request, as a pure ASGI middleware:
it only watches the messages go by, so streamed responses (SSE) pass unbuffered.

A response is counted when it starts (a stream's status is known then) and timed when it
ends. The route label is the matched route's template, never the raw path.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sogni_intelligence.observability.logs import REQUEST_ID, sanitize_request_id
from sogni_intelligence.observability.metrics import HTTP_DURATION, HTTP_REQUESTS, UNMATCHED

log = logging.getLogger("sogni_intelligence.http")

REQUEST_ID_HEADER = b"x-request-id"
#: The status logged for a request whose client left before any answer started.
CLIENT_GONE = 499


def route_of(scope: Scope) -> str:
    """The template of the route that took the request (`/v1/chat/runs/{run_id}`)."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def request_state(scope: Scope) -> dict[str, Any]:
    """The per-request state dict that `request.state` reads and writes."""
    return scope.setdefault("state", {})


def request_id_of(scope: Scope) -> str | None:
    return request_state(scope).get("request_id")


class ObserveRequests:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope["method"]
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER)
        request_id = sanitize_request_id(given.decode("latin-1") if given else None)
        state = request_state(scope)
        state["request_id"] = request_id
        token = REQUEST_ID.set(request_id)
        status: int | None = None

        def started_with(code: int) -> None:
            nonlocal status
            status = code
            HTTP_REQUESTS.labels(route_of(scope), method, str(code)).inc()

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != REQUEST_ID_HEADER]
                message["headers"] = [*headers, (REQUEST_ID_HEADER, request_id.encode())]
                started_with(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except Exception:
            if status is None:  # the server's error handler answers 500 outside this one
                started_with(500)
            raise
        finally:
            if status is None:
                started_with(CLIENT_GONE)
            elapsed = time.perf_counter() - started
            route = route_of(scope)
            HTTP_DURATION.labels(route, method, str(status)).observe(elapsed)
            log.info(
                "%s %s %s",
                method,
                scope["path"],
                status,
                extra={
                    "request_id": request_id,
                    "key_id": state.get("key_id"),
                    "method": method,
                    "route": route,
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 1),
                },
            )
            REQUEST_ID.reset(token)
