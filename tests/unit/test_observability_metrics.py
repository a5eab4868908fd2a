"""Metric helpers: LLM metering of an engine's chunks, gauge replacement, the request
middleware (route templates, request ids, streams counted at start and timed at the end), the
metrics-only server and fetch refusals.

The registry is the process's own, so each test reads how much a value moved."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from sogni_intelligence.llm.metering import decode_rate, metered, progress
from sogni_intelligence.media.fetch import FetchError, FetchPolicy, fetch_media, refuse_early
from sogni_intelligence.observability.http import ObserveRequests
from sogni_intelligence.observability.metrics import RECORDS, REGISTRY, replace
from sogni_intelligence.observability.server import MetricsApp, MetricsServer


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> dict:
    delta = {} if content is None else {"content": content}
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


ANSWER = [
    {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]},
    _chunk("Hel"),
    _chunk("lo"),
    _chunk("!"),
    _chunk(finish="stop"),
    {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 3}},
]


async def _engine(chunks: list[dict], fail: bool = False) -> AsyncGenerator[dict, None]:
    for chunk in chunks:
        await asyncio.sleep(0)
        yield chunk
    if fail:
        raise RuntimeError("engine broke")


class Moves:
    """How far each LLM series of one model moved since it was made."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.names = {
            "ok": ("sogni_llm_requests_total", {"outcome": "ok"}),
            "error": ("sogni_llm_requests_total", {"outcome": "error"}),
            "cancelled": ("sogni_llm_requests_total", {"outcome": "cancelled"}),
            "prompt": ("sogni_llm_prompt_tokens_total", {}),
            "completion": ("sogni_llm_completion_tokens_total", {}),
            "ttft": ("sogni_llm_time_to_first_token_seconds_count", {}),
            "rate": ("sogni_llm_tokens_per_second_count", {}),
        }
        self.start = self._now()

    def _now(self) -> dict[str, float]:
        return {
            key: value(name, model=self.model, **labels)
            for key, (name, labels) in self.names.items()
        }

    def moved(self) -> dict[str, float]:
        now = self._now()
        return {key: now[key] - self.start[key] for key in now if now[key] != self.start[key]}


def busy(model: str) -> float:
    return value("sogni_llm_slots_busy", model=model, engine="embedded")


async def test_a_finished_generation_counts_its_tokens_and_timings() -> None:
    moves = Moves("m-ok")
    seen = []
    async with aclosing(metered("m-ok", "embedded", _engine(ANSWER))) as chunks:
        async for chunk in chunks:
            seen.append(chunk)
            assert busy("m-ok") == 1
    assert seen == ANSWER and busy("m-ok") == 0
    assert moves.moved() == {"ok": 1, "prompt": 11, "completion": 3, "ttft": 1, "rate": 1}


async def test_a_failing_engine_counts_an_error_and_frees_its_slot() -> None:
    moves = Moves("m-err")
    with pytest.raises(RuntimeError):
        async for _ in metered("m-err", "embedded", _engine(ANSWER[:2], fail=True)):
            pass
    assert moves.moved() == {"error": 1, "ttft": 1} and busy("m-err") == 0


async def test_a_consumer_that_leaves_early_cancels_and_closes_the_engine() -> None:
    closed = asyncio.Event()

    async def engine() -> AsyncGenerator[dict, None]:
        try:
            for chunk in ANSWER:
                yield chunk
        finally:
            closed.set()

    moves = Moves("m-gone")
    async with aclosing(metered("m-gone", "embedded", engine())) as chunks:
        async for _ in chunks:
            break
    assert closed.is_set() and busy("m-gone") == 0
    assert moves.moved() == {"cancelled": 1}


async def test_leaving_after_the_finish_still_counts_as_ok() -> None:
    moves = Moves("m-done")
    async with aclosing(metered("m-done", "embedded", _engine(ANSWER))) as chunks:
        async for chunk in chunks:
            if chunk["choices"] and chunk["choices"][0]["finish_reason"]:
                break
    assert moves.moved() == {"ok": 1, "ttft": 1}


def test_what_counts_as_a_generated_token_and_a_finish() -> None:
    assert [progress(chunk) for chunk in ANSWER] == [
        (False, False),
        *[(True, False)] * (len(ANSWER) - 3),
        (False, True),
        (False, False),
    ]
    call = {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"name": "f"}}]}}]}
    assert progress(call) == (True, False)
    assert progress({"choices": [{"delta": {"reasoning_content": "hm"}}]}) == (True, False)
    two = {"choices": [{"delta": {}, "finish_reason": "stop"}, {"delta": {"content": "a"}}]}
    assert progress(two) == (True, True)


def test_decoding_speed_counts_the_tokens_after_the_first() -> None:
    assert decode_rate(11, 1.0, 3.0) == 5.0
    assert decode_rate(1, 1.0, 3.0) is None
    assert decode_rate(5, 2.0, 2.0) is None


def test_replace_drops_the_series_that_are_gone() -> None:
    replace(RECORDS, {("workflow", "running"): 2, ("chat_run", "queued"): 1})
    replace(RECORDS, {("workflow", "running"): 3})
    assert value("sogni_records", kind="workflow", status="running") == 3
    assert (
        REGISTRY.get_sample_value("sogni_records", {"kind": "chat_run", "status": "queued"}) is None
    )


# --- the request middleware -------------------------------------------------------------------


async def _item(request: Request) -> JSONResponse:
    request.state.key_id = "key_test"
    return JSONResponse({"id": request.path_params["item_id"]})


async def _broken(_: Request) -> JSONResponse:
    raise RuntimeError("bug")


async def _stream(_: Request) -> StreamingResponse:
    route = {"route": "/stream", "method": "GET", "status": "200"}
    counted: list[float] = []

    async def body() -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"
        # The response has started: it is counted already, but not timed yet.
        counted.append(value("sogni_http_requests_total", **route))
        counted.append(value("sogni_http_request_duration_seconds_count", **route))
        yield f"data: {counted[0]} {counted[1]}\n\n".encode()

    return StreamingResponse(body(), media_type="text/event-stream")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(
        routes=[
            Route("/items/{item_id}", _item),
            Route("/broken", _broken),
            Route("/stream", _stream),
        ]
    )
    transport = httpx.ASGITransport(app=ObserveRequests(app), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_requests_are_labelled_by_route_template_and_logged(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    labels = {"route": "/items/{item_id}", "method": "GET", "status": "200"}
    before = value("sogni_http_requests_total", **labels)
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    before_unmatched = value("sogni_http_requests_total", **unmatched)
    with caplog.at_level(logging.INFO, "sogni_intelligence.http"):
        for item in ("a1", "b2", "c3"):
            assert (await http.get(f"/items/{item}")).status_code == 200
        assert (await http.get("/nowhere/x")).status_code == 404
    assert value("sogni_http_requests_total", **labels) == before + 3
    assert value("sogni_http_request_duration_seconds_count", **labels) >= 3
    assert value("sogni_http_requests_total", **unmatched) == before_unmatched + 1
    lines = [r for r in caplog.records if r.name == "sogni_intelligence.http"]
    assert len(lines) == 4
    first = lines[0].__dict__
    assert first["route"] == "/items/{item_id}" and first["path"] == "/items/a1"
    assert first["status"] == 200 and first["method"] == "GET" and first["key_id"] == "key_test"
    assert first["duration_ms"] >= 0 and len(first["request_id"]) == 32
    assert lines[3].__dict__["key_id"] is None


async def test_the_request_id_is_echoed_or_made(http: httpx.AsyncClient) -> None:
    given = await http.get("/items/x", headers={"X-Request-Id": "client-7"})
    assert given.headers["x-request-id"] == "client-7"
    replaced = await http.get("/items/x", headers={"X-Request-Id": "x" * 200})
    assert len(replaced.headers["x-request-id"]) == 32
    made = await http.get("/nowhere")
    assert made.status_code == 404 and len(made.headers["x-request-id"]) == 32


async def test_a_stream_is_counted_when_it_starts_and_timed_when_it_ends(
    http: httpx.AsyncClient,
) -> None:
    route = {"route": "/stream", "method": "GET", "status": "200"}
    counted = value("sogni_http_requests_total", **route)
    timed = value("sogni_http_request_duration_seconds_count", **route)
    response = await http.get("/stream", headers={"X-Request-Id": "s-1"})
    assert response.headers["x-request-id"] == "s-1"
    assert response.text.splitlines()[2] == f"data: {counted + 1} {timed}"
    assert value("sogni_http_request_duration_seconds_count", **route) == timed + 1


async def test_an_unhandled_error_counts_as_a_500(http: httpx.AsyncClient) -> None:
    labels = {"route": "/broken", "method": "GET", "status": "500"}
    before = value("sogni_http_requests_total", **labels)
    assert (await http.get("/broken")).status_code == 500
    assert value("sogni_http_requests_total", **labels) == before + 1


# --- the metrics-only server ------------------------------------------------------------------


async def test_the_metrics_app_refreshes_then_serves_only_metrics() -> None:
    refreshed: list[bool] = []

    async def refresh() -> None:
        refreshed.append(True)

    transport = httpx.ASGITransport(app=MetricsApp(refresh))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        scraped = await client.get("/metrics")
        assert scraped.status_code == 200 and refreshed == [True]
        assert scraped.headers["content-type"].startswith("text/plain")
        assert "# TYPE sogni_http_requests_total counter" in scraped.text
        assert (await client.get("/v1/models")).status_code == 404
        assert (await client.post("/metrics")).status_code == 405


async def test_the_metrics_server_listens_on_its_own_port_and_stops() -> None:
    server = MetricsServer("127.0.0.1", 0, None)
    await server.start()
    try:
        async with httpx.AsyncClient() as client:
            scraped = await client.get(f"http://127.0.0.1:{server.port}/metrics")
        assert scraped.status_code == 200 and "sogni_records" in scraped.text
    finally:
        await server.stop()
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{server.port}/metrics")


async def test_a_port_in_use_is_an_error_at_start() -> None:
    first = MetricsServer("127.0.0.1", 0, None)
    await first.start()
    try:
        with pytest.raises(OSError):
            await MetricsServer("127.0.0.1", first.port, None).start()
    finally:
        await first.stop()


# --- fetch refusals ---------------------------------------------------------------------------


async def test_fetch_refusals_are_counted_by_reason() -> None:
    policy = FetchPolicy(own_base_url="https://api.example.test")
    blocked = value("sogni_media_fetch_refusals_total", reason="media_url_blocked")
    invalid = value("sogni_media_fetch_refusals_total", reason="media_url_invalid")
    with pytest.raises(FetchError):
        refuse_early("http://169.254.169.254/latest/meta-data", policy, "image_url")
    with pytest.raises(FetchError):
        await fetch_media("http://127.0.0.1:9/cat.png", policy=policy)
    with pytest.raises(FetchError):
        await fetch_media("ftp://example.test/cat.png", policy=policy)
    assert value("sogni_media_fetch_refusals_total", reason="media_url_blocked") == blocked + 2
    assert value("sogni_media_fetch_refusals_total", reason="media_url_invalid") == invalid + 1
