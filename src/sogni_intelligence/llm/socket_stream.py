"""A chat completion streamed from llama.cpp's own HTTP server on the engine's private unix
socket, read by the event loop itself.

xllamacpp's callback API costs two thread hand-overs per token (llama.cpp's thread wakes the
Python thread blocked in the call, which takes the GIL to run the callback, which wakes the
event loop). Reading llama.cpp's server-sent events from the socket costs one: the loop wakes
when the bytes arrive. The HTTP response is parsed by httptools (llhttp, the parser uvicorn
runs on), the events' JSON by orjson.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator
from typing import Any

import httptools
import orjson

from sogni_intelligence.llm.protocol import Chunk, EngineError

#: How long a connected request waits at most for others still connecting (see `Departures`).
TOGETHER_WAIT_S = 0.005

#: Sent instead of a chunk when the response has ended.
_END = object()


class _EventReader(asyncio.Protocol):
    """Parses the response as it arrives and keeps each event's payload for `take`: chunks
    (dicts), an `EngineError` when llama.cpp reports one or the stream breaks, then `_END`.

    A deque and one waiter rather than an `asyncio.Queue`: the hand-over runs once per token,
    and the queue's bookkeeping was about 6 % of the event loop's time at 16 streams."""

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._status = 0
        self._pending = b""  # an event not yet complete
        self._done = False

    async def take(self) -> list[Any]:
        """Every payload that has come since the last call, waiting for one if none has."""
        if not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        items = list(self._items)
        self._items.clear()
        return items

    def _put(self, item: Any) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # asyncio.Protocol

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._finish(_failure(502, f"unreadable response from the engine: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done:
            reason = f"the engine closed the stream early ({exc or 'no error'})"
            self._finish(_failure(502, reason))

    # httptools callbacks

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if self._status != 200:
            self._pending += body
            return
        events = (self._pending + body).split(b"\n\n")
        self._pending = events.pop()
        for event in events:
            self._event(event)

    def on_message_complete(self) -> None:
        if self._status != 200:
            self._finish(engine_error(_error_of(self._pending, self._status)))
        else:
            self._finish(None)

    def _event(self, event: bytes) -> None:
        if self._done:
            return
        field, _, value = event.partition(b":")
        value = value.strip()
        if field == b"data" and value != b"[DONE]":
            try:
                chunk = orjson.loads(value)
            except orjson.JSONDecodeError:
                self._finish(_failure(502, f"unreadable event from the engine: {event[:200]!r}"))
                return
            if isinstance(chunk, dict) and "error" in chunk:
                self._finish(engine_error(_error_of(value, 500)))
            else:
                self._put(chunk)
        elif field == b"error":
            self._finish(engine_error(_error_of(value, 500)))

    def _finish(self, error: EngineError | None) -> None:
        if self._done:
            return
        self._done = True
        if error is not None:
            self._put(error)
        self._put(_END)


def _failure(status: int, message: str) -> EngineError:
    return EngineError(message, status, "server_error")


def _error_of(body: bytes, status: int) -> dict[str, Any]:
    """The error object of an error body or event: `{"error": {...}}`, or the object itself
    (llama.cpp sends both shapes); the text as the message otherwise."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error", payload)
        if isinstance(error, dict) and "message" in error:
            return {"code": status, **error}
    return {"code": status, "message": body.decode(errors="replace").strip() or f"HTTP {status}"}


class Departures:
    """Requests that connect to one engine at the same moment are sent to it together.

    llama.cpp's task loop wakes at the first request and batches only those that are there:
    a request arriving a moment later waits for that decode step before its prompt is
    begun. The event loop readies requests one after another (about half a millisecond
    each), so the requests of a burst used to reach llama.cpp up to 2-3 ms apart, and it
    began the first of a burst of 4 alone in 82-86 % of bursts (llama.cpp's own server,
    reached by the client directly: 64-66 %). A connected request therefore waits, at most
    `TOGETHER_WAIT_S`, while others are still connecting; the last one to connect sends them
    all on their way. A request alone never waits."""

    def __init__(self) -> None:
        self._connecting = 0
        self._waiting: list[asyncio.Future[None]] = []

    async def connect(self, socket_path: str) -> tuple[asyncio.Transport, _EventReader]:
        """A connection to the engine, once no other request is still connecting."""
        loop = asyncio.get_running_loop()
        self._connecting += 1
        try:
            transport, reader = await loop.create_unix_connection(_EventReader, socket_path)
        finally:
            self._connecting -= 1
            if not self._connecting:
                self._send_all()
        if self._connecting:
            try:
                await self._together()
            except BaseException:
                transport.close()
                raise
        return transport, reader

    async def _together(self) -> None:
        ready = asyncio.get_running_loop().create_future()
        self._waiting.append(ready)
        try:
            async with asyncio.timeout(TOGETHER_WAIT_S):
                await ready
        except TimeoutError:
            pass
        finally:
            if ready in self._waiting:
                self._waiting.remove(ready)

    def _send_all(self) -> None:
        for ready in self._waiting:
            if not ready.done():
                ready.set_result(None)
        self._waiting.clear()


async def stream_chat(
    socket_path: str, request: dict[str, Any], departures: Departures
) -> AsyncGenerator[Chunk, None]:
    """POST `request` to llama.cpp's `/v1/chat/completions` and yield its chunks; its errors
    raise `EngineError`. Closing the generator closes the connection, and llama.cpp stops the
    generation at its next token."""
    body = orjson.dumps(request)
    try:
        transport, reader = await departures.connect(socket_path)
    except OSError as exc:
        raise _failure(503, f"the engine cannot be reached: {exc}") from None
    try:
        transport.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: llama\r\n"
            b"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
        while True:
            for item in await reader.take():
                if item is _END:
                    return
                if isinstance(item, EngineError):
                    raise item
                yield item
    finally:
        transport.close()


def engine_error(error: Any) -> EngineError:
    """An `EngineError` for an error object of llama.cpp's, with the status and code a client
    should see."""
    if not isinstance(error, dict):
        return EngineError(str(error))
    status = int(error.get("code") or 500)
    kind = error.get("type") or "server_error"
    message = str(error.get("message") or error)
    if kind == "exceed_context_size_error":
        return EngineError(message, 400, "invalid_request_error", "context_length_exceeded")
    if "image input is not supported" in message:  # llama.cpp answers it with a 500
        return EngineError(
            "this model has no image input", 400, "invalid_request_error", "model_not_vision"
        )
    return EngineError(
        message,
        status if 400 <= status < 600 else 500,
        "invalid_request_error" if 400 <= status < 500 else "server_error",
    )
