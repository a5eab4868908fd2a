"""The whole app with only upstream models, driven by the `openai` SDK in process.

The app runs on httpx's ASGITransport (its lifespan driven by hand); its upstream engines talk
real HTTP to the fake upstream server.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
import pytest_asyncio
from fake_upstream import ERROR_400_MESSAGE, ERROR_CHUNK_MESSAGE, FakeUpstream
from PIL import Image

from sogni_intelligence.api.app import create_app
from sogni_intelligence.config import ModelConfig, Settings
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.keys import KeyStore

# One app for the module (each upstream engine's httpx client costs ~50 ms to build), so the
# tests share the module's event loop with it.
pytestmark = pytest.mark.asyncio(loop_scope="module")

UPSTREAM_KEY = "sk-upstream-only"
HELLO = [{"role": "user", "content": "Say hello"}]
#: Without hosted tools the request reaches the upstream as the client sent it.
RELAY = {"sogni_tools": "none"}


@dataclass
class Api:
    client: openai.AsyncOpenAI
    http: httpx.AsyncClient
    key: str
    fake: FakeUpstream


def upstream_models(url: str) -> list[ModelConfig]:
    def model(model_id: str, upstream_model: str, **fields: Any) -> ModelConfig:
        return ModelConfig(
            id=model_id,
            engine="upstream",
            base_url=url + "/v1",
            upstream_model=upstream_model,
            api_key=UPSTREAM_KEY,
            **fields,
        )

    return [
        model("up-chat", "chunks-4", aliases=["chat-alias"]),
        model("up-tools", "tools"),
        model("up-refuses", "status-400"),
        model("up-broken", "status-500"),
        model("up-error-chunk", "error-chunk"),
        model("up-vision", "chunks-1", vision=True),
        model("up-text", "chunks-1", vision=False),
        model("up-textcalls", "script-textcalls"),
        model("up-badindex", "script-badindex"),
    ]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(
    tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeUpstream
) -> AsyncIterator[Api]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("app"),
        database_url=None,
        models=upstream_models(fake_upstream.url),
        default_model="up-chat",
    )
    settings.ensure_data_dir()
    db = Database(settings.resolved_database_url)
    await db.create_all()
    key, _ = await KeyStore(db).create("t")
    await db.close()

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        client = openai.AsyncOpenAI(
            api_key=key, base_url="http://test/v1", http_client=http, max_retries=0
        )
        try:
            yield Api(client, http, key, fake_upstream)
        finally:
            await client.close()
            await http.aclose()


async def test_non_stream_completion_is_assembled_from_the_upstream_stream(api: Api) -> None:
    completion = await api.client.chat.completions.create(
        model="up-chat", messages=HELLO, max_tokens=20, extra_body=RELAY
    )

    assert completion.object == "chat.completion"
    assert completion.model == "up-chat"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "w0 w1 w2 w3 "
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 7
    assert completion.usage.completion_tokens == 4
    assert completion.usage.total_tokens == 11

    sent = api.fake.last
    assert sent.body["model"] == "chunks-4"
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["max_tokens"] == 20
    assert sent.body["messages"] == HELLO
    # The upstream gets its own key, never the client's.
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert api.key not in json.dumps(sent.headers)


async def test_alias_and_stream_with_usage(api: Api) -> None:
    stream = await api.client.chat.completions.create(
        model="chat-alias",
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    assert {chunk.model for chunk in chunks} == {"chat-alias"}
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "w0 w1 w2 w3 "
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    assert api.fake.last.body["model"] == "chunks-4"


async def test_stream_tool_call_deltas_reassemble_by_index(api: Api) -> None:
    tools: list[Any] = [
        {
            "type": "function",
            "function": {
                "name": name,
                "description": f"{name} tool",
                "parameters": {"type": "object", "properties": {arg: {"type": "string"}}},
            },
        }
        for name, arg in (("get_weather", "city"), ("get_time", "tz"))
    ]
    stream = await api.client.chat.completions.create(
        model="up-tools", messages=HELLO, tools=tools, stream=True, extra_body=RELAY
    )

    calls: dict[int, dict[str, str]] = {}
    finish = None
    async for chunk in stream:
        assert chunk.usage is None  # not asked for
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for fragment in choice.delta.tool_calls or []:
                call = calls.setdefault(fragment.index, {"id": "", "name": "", "arguments": ""})
                if fragment.id:
                    call["id"] = fragment.id
                if fragment.function and fragment.function.name:
                    call["name"] = fragment.function.name
                if fragment.function and fragment.function.arguments:
                    call["arguments"] += fragment.function.arguments

    assert finish == "tool_calls"
    assert sorted(calls) == [0, 1]
    assert calls[0]["id"] == "call_weather" and calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}
    assert calls[1]["id"] == "call_time" and calls[1]["name"] == "get_time"
    assert json.loads(calls[1]["arguments"]) == {"tz": "UTC"}
    sent_tools = api.fake.last.body["tools"]
    assert [t["function"]["name"] for t in sent_tools] == ["get_weather", "get_time"]


async def test_non_stream_tool_calls_are_merged(api: Api) -> None:
    completion = await api.client.chat.completions.create(
        model="up-tools", messages=HELLO, extra_body=RELAY
    )

    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None
    assert [(c.id, c.function.name) for c in message.tool_calls] == [
        ("call_weather", "get_weather"),
        ("call_time", "get_time"),
    ]
    assert [json.loads(c.function.arguments) for c in message.tool_calls] == [
        {"city": "Paris"},
        {"tz": "UTC"},
    ]
    assert completion.usage is not None and completion.usage.total_tokens == 42


async def test_hosted_loop_ends_when_the_model_keeps_calling_unknown_tools(api: Api) -> None:
    """The upstream answers every round with calls to tools nobody offered (also the last
    round, which offers none): each call fails for the model to see, and the turn ends cut
    short at the round limit instead of failing."""
    before = len(api.fake.requests)
    response = await api.http.post(
        "/v1/chat/completions",
        json={"model": "up-tools", "messages": HELLO},
        headers={"Authorization": f"Bearer {api.key}"},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["choices"][0]["finish_reason"] == "length"
    rounds = len(api.fake.requests) - before
    assert rounds == 8  # SOGNI_AGENT_MAX_ROUNDS' default
    assert "tools" not in api.fake.last.body  # the last round offers none
    results = body["sogni_tool_results"]
    assert len(results) == 2 * rounds
    assert {(r["tool"], r["ok"], r["error_type"]) for r in results} == {
        ("get_weather", False, "PARAMETER_INVALID"),
        ("get_time", False, "PARAMETER_INVALID"),
    }


async def _hosted_turn(api: Api, model: str) -> dict[str, Any]:
    """A turn with the hosted tools on `model`: the response body."""
    response = await api.http.post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "A cat."}]},
        headers={"Authorization": f"Bearer {api.key}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_calls_written_as_text_are_read_and_an_unreadable_one_is_sent_back(
    api: Api,
) -> None:
    """Round 1 writes a `<tool_call>` whose JSON never ends: the model gets it back once as a
    failed call that shows the form. Round 2 writes the call in a fenced JSON block: it runs.
    None of the call text reaches the answer."""
    body = await _hosted_turn(api, "up-textcalls")
    unread, made = body["sogni_tool_results"]
    assert (unread["tool"], unread["ok"], unread["error_type"]) == (
        "generate_image",
        False,
        "PARAMETER_INVALID",
    )
    assert "<tool_call>" in unread["message"]  # the form a call must take
    assert made["tool"] == "generate_image" and made["ok"] is True, made
    assert made["arguments"] == {"prompt": "a cat", "width": 256, "height": 256}
    assert made["output_assets"][0]["width"] == 256
    assert body["choices"][0]["message"]["content"] == "Here is your cat."
    # The failed call went back to the model as a tool message it could read.
    messages = api.fake.requests[-2].body["messages"]
    assert [m["role"] for m in messages][-2:] == ["assistant", "tool"]
    assert "arguments must be one JSON object" in messages[-1]["content"]


async def test_an_upstream_call_naming_missing_media_is_answered_with_what_exists(
    api: Api,
) -> None:
    """Upstream decoding is not ours to constrain: the call is checked instead, answered
    `ok: false` with what the session has, and no workflow is started for it."""
    body = await _hosted_turn(api, "up-badindex")
    [result] = body["sogni_tool_results"]
    assert result["ok"] is False and result["error_type"] == "PARAMETER_INVALID"
    assert result["message"] == (
        "sourceImageIndex=1 points at no image: this session has no image yet"
    )
    assert body["creative_workflows"] == []
    # What the upstream was offered already left the index out: there is no image.
    offered = {t["function"]["name"]: t for t in api.fake.requests[-2].body["tools"]}
    assert (
        "sourceImageIndex" not in offered["generate_image"]["function"]["parameters"]["properties"]
    )
    assert "edit_image" not in offered


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_400_is_a_bad_request_with_its_message(api: Api, stream: bool) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await api.client.chat.completions.create(model="up-refuses", messages=HELLO, stream=stream)

    assert info.value.status_code == 400
    assert ERROR_400_MESSAGE in info.value.message
    assert isinstance(info.value.body, dict)
    assert info.value.body["type"] == "invalid_request_error"


async def test_upstream_500_is_a_502(api: Api) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        await api.client.chat.completions.create(model="up-broken", messages=HELLO)

    assert info.value.status_code == 502
    assert "fake upstream failure 500" in info.value.message


async def test_error_chunk_mid_stream_reaches_the_client(api: Api) -> None:
    stream = await api.client.chat.completions.create(
        model="up-error-chunk", messages=HELLO, stream=True, extra_body=RELAY
    )
    received: list[str] = []
    with pytest.raises(openai.APIError) as info:
        async for chunk in stream:
            received.extend(c.delta.content or "" for c in chunk.choices)

    assert received == ["partial"]
    assert ERROR_CHUNK_MESSAGE in info.value.message


async def test_models_list_shows_upstream_engines(api: Api) -> None:
    page = await api.client.models.list()
    cards = {card.id: card.model_dump() for card in page.data}

    assert set(cards) == {m.id for m in upstream_models(api.fake.url)} | {"chat-alias"}
    chat = cards["up-chat"]
    assert chat["engine"] == "upstream"
    assert chat["default"] is True
    assert chat["served_by"] == f"{api.fake.url}/v1 (chunks-4)"
    assert chat["capabilities"]["tools"] == "upstream"
    assert cards["chat-alias"]["alias_of"] == "up-chat"
    assert cards["up-vision"]["capabilities"]["vision"] is True
    assert cards["up-text"]["capabilities"]["vision"] is False
    assert all(card["engine"] == "upstream" for card in cards.values())


def png_data_uri() -> str:
    image = Image.new("RGB", (8, 6), (200, 30, 30))
    out = io.BytesIO()
    image.save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def image_message(uri: str) -> list[Any]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What colour is this?"},
                {"type": "image_url", "image_url": {"url": uri}},
            ],
        }
    ]


async def test_image_is_forwarded_to_a_vision_upstream(api: Api) -> None:
    uri = png_data_uri()

    completion = await api.client.chat.completions.create(
        model="up-vision", messages=image_message(uri), extra_body=RELAY
    )

    assert completion.choices[0].message.content == "w0 "
    content = api.fake.last.body["messages"][0]["content"]
    assert content == [
        {"type": "text", "text": "What colour is this?"},
        {"type": "image_url", "image_url": {"url": uri}},
    ]
    forwarded = content[1]["image_url"]["url"]
    raw = base64.b64decode(forwarded.split(",", 1)[1])
    with Image.open(io.BytesIO(raw)) as image:
        assert (image.format, image.size) == ("PNG", (8, 6))


@pytest.mark.parametrize(
    "extra", [{"sogni_tools": "none"}, {"sogni_tool_execution": False}], ids=["none", "no-exec"]
)
async def test_image_is_refused_for_a_text_only_upstream(api: Api, extra: dict) -> None:
    """Only hosted tools run here could take the image as an upload; without them it has
    nowhere to go."""
    before = len(api.fake.requests)

    with pytest.raises(openai.BadRequestError) as info:
        await api.client.chat.completions.create(
            model="up-text", messages=image_message(png_data_uri()), extra_body=extra
        )

    assert info.value.status_code == 400
    assert info.value.code == "model_not_vision"
    assert "'up-text' has no image input" in info.value.message
    assert len(api.fake.requests) == before  # refused before anything went upstream


async def test_requests_without_our_key_never_reach_the_upstream(api: Api) -> None:
    before = len(api.fake.requests)

    response = await api.http.post(
        "/v1/chat/completions",
        json={"model": "up-chat", "messages": HELLO},
        headers={"Authorization": f"Bearer {UPSTREAM_KEY}"},
    )

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert len(api.fake.requests) == before
