"""The official `anthropic` SDK against the real server and the real tiny model:
`/v1/messages` plain and streamed, forced tool use, a tool_result round trip, count_tokens and
the errors the SDK raises."""

from __future__ import annotations

import base64
import io

import anthropic
import httpx
import jsonschema
import pytest
from PIL import Image

from tests.e2e.conftest import RunningServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

MODEL = "qwen3.6-35b-a3b-gguf-iq4xs"
HELLO = [{"role": "user", "content": "Say hello in one short sentence."}]
WEATHER = {
    "name": "get_weather",
    "description": "The current weather of a city.",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
    },
}


@pytest.fixture(scope="module")
def client(server: RunningServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key=server.key, max_retries=0)


def test_plain_message(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model=MODEL, max_tokens=24, messages=HELLO)
    assert message.id.startswith("msg_") and message.type == "message"
    assert message.role == "assistant" and message.model == MODEL
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.content and message.content[0].type == "text" and message.content[0].text
    assert message.usage.input_tokens > 0 and 0 < message.usage.output_tokens <= 24


def test_max_tokens_and_stop_sequence(client: anthropic.Anthropic) -> None:
    cut = client.messages.create(model=MODEL, max_tokens=3, messages=HELLO, system="You are terse.")
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 3
    counted = client.messages.create(
        model=MODEL,
        max_tokens=60,
        messages=[{"role": "user", "content": "Count from 1 to 20, separated by commas."}],
        stop_sequences=["7"],
        # This SDK version sends sampling fields only as extras; the API still takes them.
        extra_body={"temperature": 0, "top_k": 1},
    )
    assert counted.stop_reason == "stop_sequence" and counted.stop_sequence == "7"
    text = counted.content[0].text if counted.content else ""
    assert "7" not in text and "6" in text


def test_streamed_message(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model=MODEL, max_tokens=24, messages=HELLO) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_start" in kinds and "text" in kinds and "message_delta" in kinds
    assert final.content[0].type == "text" and final.content[0].text
    assert final.stop_reason in ("end_turn", "max_tokens")
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0


def test_raw_stream_frames(server: RunningServer) -> None:
    """Each frame names its event, and its data has the same type."""
    body = {"model": MODEL, "max_tokens": 8, "messages": HELLO, "stream": True}
    headers = {"x-api-key": server.key, "anthropic-version": "2023-06-01"}
    with httpx.stream("POST", f"{server.url}/v1/messages", json=body, headers=headers) as r:
        assert r.status_code == 200
        frames = r.read().decode().strip().split("\n\n")
    names = []
    for frame in frames:
        event, data = frame.split("\n")
        name = event.removeprefix("event: ")
        assert f'"type":"{name}"' in data
        names.append(name)
    assert names[:2] == ["message_start", "ping"] and names[-2:] == [
        "message_delta",
        "message_stop",
    ]


def test_forced_tool_use_and_result_round_trip(client: anthropic.Anthropic) -> None:
    question = [{"role": "user", "content": "What is the weather in Paris?"}]
    message = client.messages.create(
        model=MODEL,
        max_tokens=80,
        messages=question,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    assert message.stop_reason == "tool_use"
    calls = [block for block in message.content if block.type == "tool_use"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].id
    jsonschema.validate(calls[0].input, WEATHER["input_schema"])

    answer = client.messages.create(
        model=MODEL,
        max_tokens=40,
        tools=[WEATHER],
        messages=[
            *question,
            {"role": "assistant", "content": message.content},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": calls[0].id,
                        "content": "Sunny, 21 degrees.",
                    }
                ],
            },
        ],
    )
    assert answer.stop_reason in ("end_turn", "max_tokens", "tool_use")
    assert answer.content


def test_streamed_forced_tool_use(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model=MODEL,
        max_tokens=80,
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[WEATHER],
        tool_choice={"type": "any"},
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    call = next(block for block in final.content if block.type == "tool_use")
    jsonschema.validate(call.input, WEATHER["input_schema"])


def test_count_tokens_matches_the_usage_of_a_message(client: anthropic.Anthropic) -> None:
    counted = client.messages.count_tokens(model=MODEL, messages=HELLO)
    message = client.messages.create(model=MODEL, max_tokens=2, messages=HELLO)
    assert counted.input_tokens == message.usage.input_tokens > 0
    with_tools = client.messages.count_tokens(model=MODEL, messages=HELLO, tools=[WEATHER])
    assert with_tools.input_tokens > counted.input_tokens


def test_errors(server: RunningServer, client: anthropic.Anthropic) -> None:
    wrong = anthropic.Anthropic(base_url=server.url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as refused:
        wrong.messages.create(model=MODEL, max_tokens=8, messages=HELLO)
    assert refused.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model=MODEL, max_tokens=0, messages=HELLO)
    assert bad.value.body["type"] == "error"  # type: ignore[index]
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="no-such-model", max_tokens=8, messages=HELLO)


def test_hosted_tool_runs_on_the_server(client: anthropic.Anthropic) -> None:
    """`sogni_tools` offers the hosted tools; a forced one runs here, its result comes with the
    message, and a tool that ends the turn answers with its question."""
    # Greedy, with room for the whole call: a sampled question can run past a small
    # max_tokens, and a call cut short is no call.
    message = client.messages.create(
        model=MODEL,
        max_tokens=400,
        messages=[{"role": "user", "content": "Make me a poster."}],
        tool_choice={"type": "tool", "name": "ask_clarifying_question"},
        extra_body={"sogni_tools": "creative-agent", "temperature": 0},
    )
    extra = message.model_extra or {}
    results = extra["sogni_tool_results"]
    assert [r["toolName"] for r in results] == ["ask_clarifying_question"] and results[0]["ok"]
    assert message.stop_reason == "end_turn"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == results[0]["question"]  # type: ignore[union-attr]


def test_an_image_for_a_model_without_vision_is_a_bad_request(client: anthropic.Anthropic) -> None:
    png = base64.b64encode(_png()).decode()
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}}
    content = [image, {"type": "text", "text": "What is this?"}]
    with pytest.raises(anthropic.BadRequestError, match="no image input"):
        client.messages.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": content}]
        )


def test_an_image_url_is_fetched_behind_the_guard(client: anthropic.Anthropic) -> None:
    image = {"type": "image", "source": {"type": "url", "url": "http://127.0.0.1:9/cat.png"}}
    content = [image, {"type": "text", "text": "What is this?"}]
    with pytest.raises(anthropic.BadRequestError, match="refusing to fetch"):
        client.messages.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": content}]
        )


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), "teal").save(out, "PNG")
    return out.getvalue()
