"""The Messages API's translation: blocks into chat messages, tool_choice and stop reasons, the
event sequence a scripted chunk stream becomes, stop sequences, errors and the key header."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.requests import Request

from sogni_intelligence.api.auth import presented_key
from sogni_intelligence.api.chat_completions.protocol import NamedToolChoice
from sogni_intelligence.api.messages.api_router import _sse
from sogni_intelligence.api.messages.errors import anthropic_error, anthropic_error_response
from sogni_intelligence.api.messages.events import (
    PING,
    MessageEvents,
    StopWatch,
    assemble,
    stop_reason,
    with_pings,
)
from sogni_intelligence.api.messages.protocol import MessagesInput, MessagesRequest
from sogni_intelligence.api.messages.translate import chat_request, image_urls
from sogni_intelligence.errors import RateLimited, ServiceError
from sogni_intelligence.llm.tokens import estimate_prompt_tokens

PNG = "iVBORw0KGgo="
TOOL = {"name": "lookup", "input_schema": {"type": "object", "properties": {}}}


def _request(**fields: Any) -> MessagesRequest:
    return MessagesRequest.model_validate(
        {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}], **fields}
    )


def _messages(body: MessagesRequest, fetched: dict[str, str] | None = None) -> list[dict]:
    chat = chat_request(body, fetched or {})
    return [m.model_dump(exclude_none=True) for m in chat.messages]


def test_blocks_become_chat_messages() -> None:
    body = _request(
        system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look:"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "é"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [
                            {"type": "text", "text": "found"},
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/gif",
                                    "data": PNG,
                                },
                            },
                        ],
                    },
                    {"type": "text", "text": "And?"},
                ],
            },
        ],
    )
    assert image_urls(body) == ["https://x.test/a.jpg"]
    out = _messages(body, {"https://x.test/a.jpg": "data:image/jpeg;base64,AAA"})
    assert out[0] == {"role": "system", "content": "Be brief.\nBe kind."}
    assert out[1]["role"] == "user" and [p["type"] for p in out[1]["content"]] == [
        "text",
        "image_url",
        "image_url",
    ]
    assert out[1]["content"][1]["image_url"]["url"] == f"data:image/png;base64,{PNG}"
    assert out[1]["content"][2]["image_url"]["url"] == "data:image/jpeg;base64,AAA"
    call = out[2]["tool_calls"][0]
    assert out[2]["content"] == "Checking."
    assert call["id"] == "toolu_1" and call["function"]["name"] == "lookup"
    assert json.loads(call["function"]["arguments"]) == {"q": "é"}
    # the result first, as a tool message; its image and the user's text after it
    assert out[3] == {
        "role": "tool",
        "tool_call_id": "toolu_1",
        "name": "lookup",
        "content": "found",
    }
    assert out[4]["role"] == "user"
    assert [p.get("text") for p in out[4]["content"]] == [
        "Images of the result of lookup:",
        None,
        "And?",
    ]


def test_a_failed_tool_result_reads_as_one() -> None:
    body = _request(
        messages=[
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "lookup", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t", "content": "boom", "is_error": True}
                ],
            },
        ]
    )
    out = _messages(body)
    assert "content" not in out[1] and out[1]["tool_calls"][0]["id"] == "t"
    assert out[2]["role"] == "tool" and out[2]["content"] == "Error: boom"


def test_a_tool_result_needs_an_earlier_tool_use() -> None:
    body = _request(
        messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "nope"}]}]
    )
    with pytest.raises(ServiceError) as refused:
        chat_request(body, {})
    assert refused.value.status == 400 and refused.value.param == "messages.0.content.0.tool_use_id"


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        (None, None, None),
        ({"type": "auto"}, "auto", None),
        ({"type": "any"}, "required", None),
        ({"type": "any", "disable_parallel_tool_use": True}, "required", False),
        ({"type": "none"}, "none", None),
    ],
)
def test_tool_choice(choice: dict | None, expected: str | None, parallel: bool | None) -> None:
    chat = chat_request(_request(tools=[TOOL], tool_choice=choice), {})
    assert chat.tool_choice == expected and chat.parallel_tool_calls is parallel
    assert chat.tools is not None and chat.tools[0].function.parameters == TOOL["input_schema"]


def test_named_tool_choice_and_request_fields() -> None:
    body = _request(
        tools=[TOOL],
        tool_choice={"type": "tool", "name": "lookup"},
        temperature=0.5,
        top_p=0.9,
        top_k=4,
        metadata={"user_id": "u1"},
        stop_sequences=["END"],
    )
    chat = chat_request(body, {})
    assert (
        isinstance(chat.tool_choice, NamedToolChoice) and chat.tool_choice.function.name == "lookup"
    )
    assert (chat.max_tokens, chat.temperature, chat.top_p, chat.top_k, chat.user) == (
        16,
        0.5,
        0.9,
        4,
        "u1",
    )
    assert chat.stop is None  # cut here, so the reply can say which sequence stopped it
    assert chat.sogni_tools == "none" and chat.stream_options and chat.stream_options.include_usage
    assert chat_request(_request(sogni_tools="creative-agent"), {}).sogni_tools == "creative-agent"


def test_count_tokens_body_needs_no_max_tokens() -> None:
    body = MessagesInput.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    )
    assert chat_request(body, {}).max_tokens is None


@pytest.mark.parametrize(
    "fields",
    [
        {"max_tokens": None},
        {"messages": []},
        {"messages": [{"role": "user", "content": []}]},
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "tool_use", "id": "a", "name": "b", "input": {}}],
                }
            ]
        },
        {
            "messages": [
                {"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "a"}]}
            ]
        },
        {"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
        {"messages": [{"role": "system", "content": "x"}]},
        {"temperature": 1.5},
        {"tools": [{"name": "bad name", "input_schema": {}}]},
        {"tools": [{"type": "web_search_20250305", "name": "web_search", "input_schema": {}}]},
        {"tool_choice": {"type": "tool"}},
        {"stop_sequences": [""]},
    ],
)
def test_bodies_the_api_refuses(fields: dict) -> None:
    with pytest.raises(ValidationError):
        _request(**fields)


@pytest.mark.parametrize(
    ("finish", "reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        (None, "end_turn"),
    ],
)
def test_stop_reason(finish: str | None, reason: str) -> None:
    assert stop_reason(finish) == reason


def test_stop_watch_holds_back_what_may_start_a_sequence() -> None:
    watch = StopWatch(["STOP", "##"])
    assert watch.feed("one ST") == ("one ", None)
    assert watch.feed("ay #") == ("STay ", None)
    assert watch.feed("# two") == ("", "##")
    assert StopWatch([]).feed("anything") == ("anything", None)
    tail = StopWatch(["xyz"])
    assert tail.feed("abx") == ("ab", None) and tail.flush() == "x"


def _chunk(delta: dict | None = None, finish: str | None = None, **extra: Any) -> dict:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"choices": choices, **extra}


async def _script(items: list[Any], closed: list[bool]) -> AsyncIterator[Any]:
    try:
        for item in items:
            yield item
    finally:
        closed.append(True)


def _events(stops: list[str] | None = None) -> MessageEvents:
    async def counted() -> int:
        return 11

    return MessageEvents("msg_1", "m", stops or [], counted)


async def _run(message: MessageEvents, items: list[Any]) -> list[dict]:
    closed: list[bool] = []
    return [event async for event in message.events(_script(items, closed))]


async def test_event_sequence_of_text_then_a_streamed_tool_call() -> None:
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "lookup", "arguments": ""},
    }
    script = [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": "Let me"}),
        _chunk({"content": " look."}),
        ": tool progress\n\n",
        _chunk({"tool_calls": [call]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"q":'}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"x"}'}}]}),
        _chunk({}, "tool_calls", sogni_tool_results=[{"ok": True}]),
        _chunk(usage={"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27}),
    ]
    events = await _run(_events(), script)
    assert [(e["type"], e.get("index")) for e in events] == [
        ("message_start", None),
        ("ping", None),
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_delta", 0),
        ("ping", None),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert events[0]["message"]["content"] == [] and events[0]["message"]["id"] == "msg_1"
    assert events[7]["content_block"] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "lookup",
        "input": {},
    }
    assert events[8]["delta"] == {"type": "input_json_delta", "partial_json": '{"q":'}
    delta = events[-2]
    assert delta["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert delta["usage"] == {"input_tokens": 20, "output_tokens": 7}
    assert delta["sogni_tool_results"] == [{"ok": True}]

    async def replay() -> AsyncIterator[dict]:
        for event in events:
            yield event

    message = await assemble(replay())
    assert message["content"] == [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "call_1", "name": "lookup", "input": {"q": "x"}},
    ]
    assert message["stop_reason"] == "tool_use" and message["usage"]["output_tokens"] == 7
    assert message["sogni_tool_results"] == [{"ok": True}]


async def test_a_stop_sequence_ends_the_message_and_the_stream() -> None:
    closed: list[bool] = []
    script = [
        _chunk({"content": "1, 2, "}),
        _chunk({"content": "3, 4"}),
        _chunk({"content": "never"}),
    ]
    events = [e async for e in _events(["3"]).events(_script(script, closed))]
    texts = [e["delta"]["text"] for e in events if e["type"] == "content_block_delta"]
    assert "".join(texts) == "1, 2, "
    delta = events[-2]
    assert delta["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "3"}
    # the engine's usage never came: the prompt is counted, the output is the pieces read
    assert delta["usage"] == {"input_tokens": 11, "output_tokens": 2}


async def test_an_empty_reply_is_a_message_without_blocks() -> None:
    events = await _run(_events(), [_chunk({}, "stop")])
    assert [e["type"] for e in events] == ["message_start", "ping", "message_delta", "message_stop"]
    assert events[2]["delta"]["stop_reason"] == "end_turn"


async def test_pings_keep_a_quiet_stream_alive() -> None:
    async def slow() -> AsyncIterator[dict]:
        yield {"type": "message_start"}
        await asyncio.sleep(0.12)
        yield {"type": "message_stop"}

    seen = [event["type"] async for event in with_pings(slow(), 0.05)]
    assert seen[0] == "message_start" and seen[-1] == "message_stop"
    assert seen.count("ping") >= 1 and PING == {"type": "ping"}


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (ServiceError("bad", 400, "invalid_request_error"), 400, "invalid_request_error"),
        (ServiceError("who", 401, "authentication_error"), 401, "authentication_error"),
        (ServiceError("no", 403, "permission_error"), 403, "permission_error"),
        (
            ServiceError("gone", 404, "invalid_request_error", "model_not_found"),
            404,
            "not_found_error",
        ),
        (ServiceError("big", 413), 413, "request_too_large"),
        (RateLimited("slow down", 3, "rpm"), 429, "rate_limit_error"),
        (ServiceError("busy", 503, "server_error"), 503, "overloaded_error"),
        (ServiceError("upstream", 502, "upstream_error"), 502, "api_error"),
        (ServiceError("late", 504, "timeout_error"), 504, "api_error"),
    ],
)
def test_error_shape(error: ServiceError, status: int, kind: str) -> None:
    assert error.status == status
    assert anthropic_error(error) == {
        "type": "error",
        "error": {"type": kind, "message": error.message},
    }


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ({"x-api-key": "k1"}, "k1"),
        ({"authorization": "Bearer k2", "x-api-key": "k1"}, "k2"),
        ({"api-key": "k3"}, "k3"),
        ({"x-api-key": " "}, None),
    ],
)
def test_presented_key(headers: dict[str, str], key: str | None) -> None:
    scope = {"type": "http", "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}
    assert presented_key(Request(scope)) == key


def test_estimate_grows_with_text_tools_and_images() -> None:
    short = {"messages": [{"role": "user", "content": "hi"}]}
    longer = {"messages": [{"role": "user", "content": "hi " * 100}]}
    image = {
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
        ]
    }
    tools = {**short, "tools": [{"type": "function", "function": TOOL}]}
    base = estimate_prompt_tokens(short)
    assert base < estimate_prompt_tokens(longer) and base < estimate_prompt_tokens(tools)
    assert estimate_prompt_tokens(image) >= 256


def test_a_rate_limit_keeps_its_retry_after() -> None:
    response = anthropic_error_response(RateLimited("slow down", 7, "rpm"))
    assert response.status_code == 429 and response.headers["retry-after"] == "7"
    assert json.loads(response.body)["error"]["type"] == "rate_limit_error"


async def test_a_failure_mid_stream_is_an_error_event() -> None:
    async def failing() -> AsyncIterator[dict]:
        yield {"type": "message_start"}
        raise ServiceError("the engine went away", 502, "upstream_error")

    frames = [frame async for frame in _sse(failing())]
    assert frames[0].startswith("event: message_start\ndata: ")
    event, data = frames[-1].strip().split("\n")
    assert event == "event: error"
    assert json.loads(data.removeprefix("data: ")) == {
        "type": "error",
        "error": {"type": "api_error", "message": "the engine went away"},
    }
