"""UpstreamEngine against a real HTTP server: what it sends, what it yields, how it fails."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from fake_upstream import (
    ERROR_400_MESSAGE,
    ERROR_CHUNK_MESSAGE,
    FakeUpstream,
    content_chunks,
    free_port,
    tool_chunks,
)

from sogni_intelligence.config import ModelConfig
from sogni_intelligence.errors import ServiceError
from sogni_intelligence.llm.protocol import EngineError
from sogni_intelligence.llm.upstream import UpstreamEngine

MakeEngine = Callable[..., UpstreamEngine]


@pytest.fixture
async def make_engine(fake_upstream: FakeUpstream) -> AsyncIterator[MakeEngine]:
    engines: list[UpstreamEngine] = []

    def make(upstream_model: str, **fields: Any) -> UpstreamEngine:
        fields.setdefault("base_url", fake_upstream.url + "/v1")
        config = ModelConfig(
            id="remote", engine="upstream", upstream_model=upstream_model, **fields
        )
        engine = UpstreamEngine(config, config.pool_upstreams[0])
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.close()


def chat(**extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": "Say hello"}], **extra}


async def collect(engine: UpstreamEngine, request: dict[str, Any]) -> list[dict[str, Any]]:
    return [chunk async for chunk in engine.stream(request)]


async def engine_error(work: Awaitable[Any]) -> EngineError:
    with pytest.raises(EngineError) as info:
        await work
    assert isinstance(info.value, ServiceError)
    return info.value


async def test_chunks_arrive_in_order_and_request_is_forced_to_stream(
    fake_upstream: FakeUpstream, make_engine: MakeEngine
) -> None:
    engine = make_engine("chunks-5", api_key="sk-upstream-secret")
    request = chat(model="the-public-id", stream=False, max_tokens=32, temperature=0.2)

    chunks = await collect(engine, request)

    assert chunks == content_chunks("chunks-5", 5)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1]) == (
        "w0 w1 w2 w3 w4 "
    )
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"] == {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}

    sent = fake_upstream.last
    assert sent.method == "POST"
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-upstream-secret"
    assert sent.headers["content-type"] == "application/json"
    assert sent.body["model"] == "chunks-5"
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["messages"] == request["messages"]
    assert sent.body["max_tokens"] == 32
    assert sent.body["temperature"] == 0.2
    # The caller's request is not modified in place.
    assert request["stream"] is False and request["model"] == "the-public-id"


async def test_no_authorization_header_without_api_key_and_trailing_slash_base_url(
    fake_upstream: FakeUpstream, make_engine: MakeEngine
) -> None:
    engine = make_engine("chunks-1", base_url=fake_upstream.url + "/v1/")

    chunks = await collect(engine, chat())

    assert chunks == content_chunks("chunks-1", 1)
    assert fake_upstream.last.path == "/v1/chat/completions"
    assert "authorization" not in fake_upstream.last.headers
    assert engine.info.engine == "upstream"
    assert engine.info.model == f"{fake_upstream.url}/v1 (chunks-1)"


async def test_model_id_is_sent_when_no_upstream_model_is_configured(
    fake_upstream: FakeUpstream,
) -> None:
    config = ModelConfig(id="chunks-2", engine="upstream", base_url=fake_upstream.url + "/v1")
    engine = UpstreamEngine(config, config.pool_upstreams[0])
    try:
        assert await collect(engine, chat()) == content_chunks("chunks-2", 2)
    finally:
        await engine.close()
    assert fake_upstream.last.body["model"] == "chunks-2"


async def test_tool_call_deltas_and_tools_pass_through(
    fake_upstream: FakeUpstream, make_engine: MakeEngine
) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    engine = make_engine("tools")

    chunks = await collect(engine, chat(tools=tools, tool_choice="auto"))

    assert chunks == tool_chunks("tools")
    assert fake_upstream.last.body["tools"] == tools
    assert fake_upstream.last.body["tool_choice"] == "auto"


@pytest.mark.parametrize(
    ("status", "expected_status", "expected_type"),
    [
        (400, 400, "invalid_request_error"),
        (404, 404, "invalid_request_error"),
        (422, 422, "invalid_request_error"),
        (401, 502, "upstream_error"),
        (403, 502, "upstream_error"),
        (408, 502, "upstream_error"),
        (500, 502, "upstream_error"),
        (503, 502, "upstream_error"),
    ],
)
async def test_upstream_http_errors_map_to_statuses(
    make_engine: MakeEngine, status: int, expected_status: int, expected_type: str
) -> None:
    error = await engine_error(collect(make_engine(f"status-{status}"), chat()))

    assert error.status == expected_status
    assert error.type == expected_type
    expected_message = ERROR_400_MESSAGE if status == 400 else f"fake upstream failure {status}"
    assert expected_message in error.message
    if expected_status == 502:
        assert f"({status})" in error.message


async def test_upstream_400_message_is_passed_on(make_engine: MakeEngine) -> None:
    error = await engine_error(collect(make_engine("status-400"), chat()))

    assert error.message == f"upstream: {ERROR_400_MESSAGE}"


async def test_malformed_data_line_is_502(make_engine: MakeEngine) -> None:
    engine = make_engine("malformed")
    seen: list[dict[str, Any]] = []

    async def consume() -> None:
        async for chunk in engine.stream(chat()):
            seen.append(chunk)

    error = await engine_error(consume())

    assert error.status == 502
    assert "malformed" in error.message
    assert len(seen) == 1  # the good chunk before the bad line still arrived


async def test_error_chunk_mid_stream_is_502(make_engine: MakeEngine) -> None:
    engine = make_engine("error-chunk")
    seen: list[dict[str, Any]] = []

    async def consume() -> None:
        async for chunk in engine.stream(chat()):
            seen.append(chunk)

    error = await engine_error(consume())

    assert error.status == 502
    assert error.type == "upstream_error"
    assert ERROR_CHUNK_MESSAGE in error.message
    assert [c["choices"][0]["delta"]["content"] for c in seen] == ["partial"]


async def test_connection_dropped_mid_body_is_502(make_engine: MakeEngine) -> None:
    error = await engine_error(collect(make_engine("truncated"), chat()))

    assert error.status == 502
    assert error.type == "upstream_error"


async def test_non_stream_answer_is_502_not_an_empty_reply(make_engine: MakeEngine) -> None:
    """An upstream that ignores `stream: true` must not look like an empty completion."""
    error = await engine_error(collect(make_engine("not-sse"), chat()))

    assert error.status == 502
    assert error.type == "upstream_error"


async def test_connection_refused_is_502(make_engine: MakeEngine) -> None:
    port = free_port()  # bound and closed again: nothing listens there now
    engine = make_engine("chunks-1", base_url=f"http://127.0.0.1:{port}/v1")

    started = time.monotonic()
    error = await engine_error(collect(engine, chat()))

    assert error.status == 502
    assert error.type == "upstream_error"
    assert "unreachable" in error.message
    assert time.monotonic() - started < 2


async def test_no_response_within_timeout_is_504(
    fake_upstream: FakeUpstream, make_engine: MakeEngine
) -> None:
    engine = make_engine("sleep", timeout_s=0.3)

    started = time.monotonic()
    error = await engine_error(collect(engine, chat()))

    assert error.status == 504
    assert error.type == "upstream_timeout"
    assert 0.25 < time.monotonic() - started < 2
    # Giving up also hangs up on the upstream.
    assert await asyncio.to_thread(fake_upstream.last.disconnected.wait, 2.0)


async def test_stall_mid_stream_is_504(make_engine: MakeEngine) -> None:
    engine = make_engine("stall", timeout_s=0.3)
    seen: list[dict[str, Any]] = []

    async def consume() -> None:
        async for chunk in engine.stream(chat()):
            seen.append(chunk)

    error = await engine_error(consume())

    assert error.status == 504
    assert len(seen) == 1


async def test_closing_the_iterator_disconnects_the_upstream(
    fake_upstream: FakeUpstream, make_engine: MakeEngine
) -> None:
    engine = make_engine("forever")
    chunks = engine.stream(chat())
    received = [await anext(chunks) for _ in range(3)]
    record = fake_upstream.last
    assert [c["choices"][0]["delta"]["content"] for c in received] == ["t0 ", "t1 ", "t2 "]
    assert not record.disconnected.is_set()

    closed_at = time.monotonic()
    await chunks.aclose()  # type: ignore[attr-defined]

    assert await asyncio.to_thread(record.disconnected.wait, 1.0), "upstream never saw a hangup"
    assert record.disconnected_at is not None
    assert record.disconnected_at - closed_at < 1.0


async def test_cancelling_the_consumer_disconnects_the_upstream(
    fake_upstream: FakeUpstream, make_engine: MakeEngine
) -> None:
    engine = make_engine("forever")
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in engine.stream(chat()):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 2)
    record = fake_upstream.last
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await asyncio.to_thread(record.disconnected.wait, 1.0), "upstream never saw a hangup"


async def test_concurrent_streams_share_one_engine(
    fake_upstream: FakeUpstream, make_engine: MakeEngine
) -> None:
    engine = make_engine("chunks-4")
    before = len(fake_upstream.requests)

    results = await asyncio.gather(*(collect(engine, chat(seed=i)) for i in range(8)))

    assert all(chunks == content_chunks("chunks-4", 4) for chunks in results)
    seeds = sorted(r.body["seed"] for r in fake_upstream.requests[before:])
    assert seeds == list(range(8))
