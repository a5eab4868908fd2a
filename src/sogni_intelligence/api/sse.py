"""Server-sent events written by hand (twice as fast as a library, full control of fields)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Annotated, Any

import orjson
from fastapi import Query

from sogni_intelligence.api.wire import MAX_DB_INT
from sogni_intelligence.observability.metrics import SSE_SUBSCRIBERS
from sogni_intelligence.store.records import BEFORE_FIRST, Event, RecordStore

DONE = "data: [DONE]\n\n"


def data_frame(payload: Any) -> str:
    """`payload` as compact JSON in a `data:` frame (orjson: a frame per token adds up)."""
    return f"data: {orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS).decode()}\n\n"


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

HEARTBEAT_S = 15.0
HEARTBEAT = b": heartbeat\n\n"

#: `?after=`: the sequence of the last event the client has; the events after it follow.
After = Annotated[int | None, Query(ge=0, le=MAX_DB_INT)]


#: How a stream shows an event: its public body, built only when no other follower that
#: shows it the same way (same variant) has built it yet, and whether the stream ends with it.
Framed = tuple[Hashable, Callable[[], dict[str, Any]], bool]


def encoded_frame(event: Event, variant: Hashable, body: Callable[[], dict[str, Any]]) -> bytes:
    """The event's `id:`/`event:`/`data:` frame, encoded once for all the streams in this
    process that show it as `variant` (every live follower gets the same event object)."""
    key = ("sse", variant)
    frame = event.memo.get(key)
    if frame is None:
        frame = event.memo[key] = (
            f"id: {event.sequence}\nevent: {event.type}\n{data_frame(body())}".encode()
        )
    return frame


async def record_events(
    records: RecordStore,
    record_id: str,
    after: int,
    frame: Callable[[Event], Awaitable[Framed]],
) -> AsyncIterator[bytes]:
    """A record's events after the cursor, replayed then live, as SSE frames. Comment
    heartbeats keep proxies from dropping an idle stream."""
    followed = records.follow(record_id, after, idle_s=HEARTBEAT_S)
    SSE_SUBSCRIBERS.inc()
    try:
        async for event in followed:
            if event is None:
                yield HEARTBEAT
                continue
            variant, body, last = await frame(event)
            yield encoded_frame(event, variant, body)
            if last:
                return
    finally:
        SSE_SUBSCRIBERS.dec()
        await followed.aclose()  # type: ignore[attr-defined]


async def nothing() -> AsyncIterator[bytes]:
    """A stream that ends at once."""
    return
    yield


async def is_latest(records: RecordStore, event: Event) -> bool:
    """True when nothing was logged after `event`: a wait replayed from history, already
    answered, must not end the stream."""
    return not await records.events(event.record_id, event.sequence, limit=1)


def cursor(after: int | None, last_event_id: str | None) -> int:
    """Where a stream resumes: `?after=` wins over `Last-Event-ID`; both are exclusive."""
    if after is not None:
        return after
    value = (last_event_id or "").strip()
    # ASCII digits only (`isdigit` takes "²" too, which `int` refuses); past the largest
    # sequence a database holds, nothing comes after it.
    if value.isascii() and value.isdigit():
        return min(int(value), MAX_DB_INT)
    return BEFORE_FIRST
