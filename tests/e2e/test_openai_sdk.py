"""The official `openai` SDK against the real server process and the real default model."""

from __future__ import annotations

import json
import time

import httpx
import jsonschema
import openai
import pytest

from tests.e2e.conftest import RunningServer

pytestmark = pytest.mark.slow

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
        },
    },
}
MODEL = "qwen3.6-35b-a3b-gguf-iq4xs"
STORY = [{"role": "user", "content": "Write a very long story about a lighthouse keeper."}]


@pytest.fixture
def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(api_key=server.key, base_url=f"{server.url}/v1", max_retries=0, timeout=60)


def test_plain_completion(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is 2+2?"},
        ],
        max_tokens=24,
        temperature=0,
    )
    assert reply.object == "chat.completion"
    assert reply.model == "qwen3.6-35b-a3b-gguf-iq4xs"
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage is not None and 0 < reply.usage.completion_tokens <= 24
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_streamed_completion_with_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=STORY,
            max_tokens=16,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == "length"
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    assert usage_chunk.usage.completion_tokens == 16
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()


def test_stream_without_include_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(model=MODEL, messages=STORY, max_tokens=4, stream=True)
    )
    assert all(chunk.choices for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "length"


#: Without this the hosted tools are offered too ("required" then means any of them, and
#: the prompt carries their listing).
ONLY_CLIENT_TOOLS = {"sogni_tools": "none"}


def test_required_tool_call(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What's the weather like in Kyoto?"}],
        tools=[WEATHER],
        tool_choice="required",
        max_tokens=120,
        temperature=0,
        extra_body=ONLY_CLIENT_TOOLS,
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])


def test_named_tool_call_streamed_and_reassembled_by_index(client: openai.OpenAI) -> None:
    clock = {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {
                "type": "object",
                "properties": {"timezone": {"type": "string"}},
                "required": ["timezone"],
            },
        },
    }
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What time is it in Kyoto?"}],
        tools=[WEATHER, clock],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        max_tokens=120,
        temperature=0,
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                entry = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                if delta.id:
                    assert not entry["id"], "the id comes once, in the first fragment"
                    entry["id"] = delta.id
                if delta.function and delta.function.name:
                    entry["name"] += delta.function.name
                if delta.function and delta.function.arguments:
                    assert entry["name"], "the name comes before the arguments"
                    entry["arguments"] += delta.function.arguments
            finish = choice.finish_reason or finish
    assert finish == "tool_calls" and list(calls) == [0]
    assert calls[0]["name"] == "get_time" and calls[0]["id"].startswith("call_")
    jsonschema.validate(json.loads(calls[0]["arguments"]), clock["function"]["parameters"])


def test_tool_round_trip_conversation(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Kyoto?"}],
        tools=[WEATHER],
        tool_choice="required",
        max_tokens=120,
        temperature=0,
        extra_body=ONLY_CLIENT_TOOLS,
    )
    call = first.choices[0].message.tool_calls[0]
    second = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "user", "content": "Weather in Kyoto?"},
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 degrees"},
        ],
        tools=[WEATHER],
        tool_choice="none",
        max_tokens=30,
    )
    assert second.choices[0].message.content
    assert not second.choices[0].message.tool_calls


def test_json_schema_response(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "year": {"type": "integer"},
            "genres": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["title", "year", "genres"],
    }
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Describe a classic film as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "film", "schema": schema}},
        max_tokens=200,
        temperature=0,
    )
    assert reply.choices[0].finish_reason == "stop"
    jsonschema.validate(
        json.loads(reply.choices[0].message.content), {**schema, "additionalProperties": False}
    )


#: The engine relayed as it is, and the agent loop of the hosted tools (the default).
PATHS = pytest.mark.parametrize("path", [ONLY_CLIENT_TOOLS, {}], ids=["relay", "agent-loop"])


@PATHS
def test_disconnect_mid_stream_frees_the_slots(
    server: RunningServer, client: openai.OpenAI, path: dict[str, str]
) -> None:
    # The server has two slots: fill both with long answers and walk away from them.
    body = {"messages": STORY, "max_tokens": 3000, "stream": True, **path}
    headers = {"Authorization": f"Bearer {server.key}"}
    for _ in range(2):
        with httpx.stream(
            "POST", f"{server.url}/v1/chat/completions", json=body, headers=headers, timeout=30
        ) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            got = [
                line for line, _ in zip(lines, range(6), strict=False) if line.startswith("data:")
            ]
            assert got
    # Were the abandoned generations still running, this would wait for 6000 tokens.
    started = time.monotonic()
    reply = client.chat.completions.create(
        model=MODEL, messages=STORY, max_tokens=8, extra_body=ONLY_CLIENT_TOOLS
    )
    assert reply.choices[0].message.content
    assert time.monotonic() - started < 5


@PATHS
def test_abandoned_plain_requests_free_the_slots(
    server: RunningServer, client: openai.OpenAI, path: dict[str, str]
) -> None:
    body = {"model": MODEL, "messages": STORY, "max_tokens": 3000, **path}
    headers = {"Authorization": f"Bearer {server.key}"}
    for _ in range(2):
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers, timeout=0.5)
    started = time.monotonic()
    reply = client.chat.completions.create(
        model=MODEL, messages=STORY, max_tokens=8, extra_body=ONLY_CLIENT_TOOLS
    )
    assert reply.choices[0].message.content
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"temperature": 3}, openai.BadRequestError),
        ({"top_p": 2}, openai.BadRequestError),
        ({"max_tokens": -1}, openai.BadRequestError),
        ({"n": 2}, openai.BadRequestError),
        ({"model": "no-such-model"}, openai.NotFoundError),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            openai.BadRequestError,
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "banana"}},
                }
            },
            openai.BadRequestError,
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image_url",
                                "image_url": {"url": "data:image/png;base64,AAAA"},
                            }
                        ],
                    }
                ]
            },
            openai.BadRequestError,
        ),
        ({"messages": [{"role": "user", "content": "x " * 9000}]}, openai.BadRequestError),
    ],
)
def test_bad_requests(client: openai.OpenAI, kwargs: dict, error: type[openai.APIError]) -> None:
    arguments = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, **kwargs}
    with pytest.raises(error) as info:
        client.chat.completions.create(**{"model": MODEL, **arguments})
    assert info.value.body and info.value.body.get("message")  # type: ignore[union-attr]


def test_bad_key_is_401(server: RunningServer) -> None:
    bad = openai.OpenAI(api_key="sk-sogni-nope", base_url=f"{server.url}/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_models_via_sdk(client: openai.OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert "qwen3.6-35b-a3b-gguf-iq4xs" in ids and "qwen3.5-35b-a3b-abliterated-gguf-q4km" in ids
    assert client.models.retrieve("qwen3.6-35b-a3b-gguf-iq4xs").owned_by == "sogni"
