"""The OpenAI Responses API through the real `openai` SDK against the real server and model:
plain, streamed, a function-tool round trip over `previous_response_id`, JSON output, and
background responses (retrieve, replayed streams, cancel, input items, delete), including one
that finishes after its server was killed mid-run and started again."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import openai
import pytest

from tests.e2e.conftest import RunningServer, running_server

MODEL = "qwen3.6-35b-a3b-gguf-iq4xs"
#: No hosted tools, and greedy decoding: the tiny model answers the same way every run.
PLAIN = {"sogni_tools": "none", "temperature": 0}
TERMINAL = ("completed", "incomplete", "failed", "cancelled")
STORY = "Write a very long story about a lighthouse keeper, chapter after chapter."


def client_of(server: RunningServer, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(api_key=key or server.key, base_url=f"{server.url}/v1", max_retries=0)


@pytest.fixture(scope="module")
def client(server: RunningServer) -> openai.OpenAI:
    return client_of(server)


def settled(client: openai.OpenAI, response_id: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        response = client.responses.retrieve(response_id)
        if response.status in TERMINAL or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def sse_events(server: RunningServer, path: str, key: str | None = None) -> list[dict[str, Any]]:
    """A stream's events by hand, checking that each frame's `event:` names its type."""
    events = []
    headers = {"Authorization": f"Bearer {key or server.key}"}
    with httpx.stream("GET", server.url + path, headers=headers, timeout=60) as response:
        assert response.status_code == 200, response.read()
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                event = json.loads(line.removeprefix("data: "))
                assert event["type"] == name
                events.append(event)
    return events


def test_plain_response(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=MODEL,
        input="Say hello in one short sentence.",
        instructions="You are brief.",
        max_output_tokens=24,
        metadata={"purpose": "test"},
        extra_body=PLAIN,
    )
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status in ("completed", "incomplete")
    assert response.output_text.strip()
    assert response.output[0].type == "message" and response.output[0].role == "assistant"
    assert response.usage is not None and response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert response.instructions == "You are brief." and response.metadata == {"purpose": "test"}
    assert response.max_output_tokens == 24 and response.store is True
    if response.status == "incomplete":
        assert response.incomplete_details.reason == "max_output_tokens"
    again = client.responses.retrieve(response.id)
    assert again.output_text == response.output_text


def test_streamed_response(client: openai.OpenAI) -> None:
    stream = client.responses.create(
        model=MODEL,
        input="Name three colours.",
        max_output_tokens=32,
        stream=True,
        extra_body=PLAIN,
    )
    events = list(stream)
    kinds = [e.type for e in events]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        kinds[-1],
    ]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = next(e for e in events if e.type == "response.output_text.done")
    assert deltas == done.text and deltas.strip()
    assert events[-1].response.output_text == deltas
    # Stored when the stream ended.
    assert client.responses.retrieve(events[-1].response.id).output_text == deltas


WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def test_function_call_round_trip(client: openai.OpenAI) -> None:
    first = client.responses.create(
        model=MODEL,
        input="What is the weather in Paris?",
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        extra_body=PLAIN,
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert isinstance(json.loads(calls[0].arguments)["city"], str)
    answer = client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[
            {
                "type": "function_call_output",
                "call_id": calls[0].call_id,
                "output": json.dumps({"city": "Paris", "temperature_c": 21, "sky": "sunny"}),
            }
        ],
        tools=[WEATHER],
        max_output_tokens=48,
        extra_body=PLAIN,
    )
    assert answer.previous_response_id == first.id
    assert answer.output_text.strip()
    assert not [item for item in answer.output if item.type == "function_call"]


def test_json_schema_output(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    response = client.responses.create(
        model=MODEL,
        input="Invent a person with a name and an age.",
        text={
            "format": {"type": "json_schema", "name": "person", "schema": schema, "strict": True}
        },
        max_output_tokens=64,
        extra_body=PLAIN,
    )
    jsonschema.validate(json.loads(response.output_text), schema)
    assert response.text.format.type == "json_schema"


def test_background_retrieve_replay_items_cancel_delete(
    client: openai.OpenAI, server: RunningServer
) -> None:
    started = client.responses.create(
        model=MODEL,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Say hi."}]}],
        background=True,
        max_output_tokens=24,
        extra_body=PLAIN,
    )
    assert started.background is True and started.status in ("queued", "in_progress")
    long = client.responses.create(
        model=MODEL, input=STORY, background=True, max_output_tokens=2000, extra_body=PLAIN
    )
    cancelled = client.responses.cancel(long.id)
    assert cancelled.status == "cancelled"
    assert settled(client, long.id).status == "cancelled"

    done = settled(client, started.id)
    assert done.status in ("completed", "incomplete") and done.output_text.strip()
    assert done.usage is not None and done.usage.output_tokens > 0

    whole = sse_events(server, f"/v1/responses/{started.id}?stream=true")
    assert [e["sequence_number"] for e in whole] == list(range(len(whole)))
    assert whole[0]["type"] == "response.created" and whole[0]["response"]["status"] == "queued"
    headers = {"Authorization": f"Bearer {server.key}"}
    raw = httpx.get(f"{server.url}/v1/responses/{started.id}", headers=headers).json()
    assert whole[-1]["response"]["output"] == raw["output"]
    tail = sse_events(server, f"/v1/responses/{started.id}?stream=true&starting_after=3")
    assert tail == whole[4:]

    items = client.responses.input_items.list(started.id)
    assert items.data[0].type == "message" and items.data[0].content[0].text == "Say hi."
    assert items.first_id == items.data[0].id and items.has_more is False

    other = json.loads(server.cli("keys", "--json", "create", "--name", "other").stdout)["key"]
    with pytest.raises(openai.NotFoundError):
        client_of(server, other).responses.retrieve(started.id)

    deleted = client.responses.delete(started.id)
    assert deleted is None or getattr(deleted, "deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(started.id)


def test_bad_requests_are_400(client: openai.OpenAI) -> None:
    for body in (
        {"input": [{"type": "reasoning", "summary": []}]},
        {"input": "hi", "background": True, "store": False},
        {"input": "hi", "previous_response_id": "resp_missing"},
    ):
        with pytest.raises((openai.BadRequestError, openai.NotFoundError)) as caught:
            client.responses.create(model=MODEL, **body)  # type: ignore[call-overload]
        assert caught.value.status_code in (400, 404)


def test_background_response_survives_a_sigkill(tmp_path: Path) -> None:
    """SIGKILL the server while a background response writes, start it again on the same data
    directory: DBOS recovers the chat run, and the response completes."""
    model = {"threads": 1, "n_parallel": 1}
    with running_server(tmp_path, model=model, log_name="first.log") as first:
        client = client_of(first)
        response = client.responses.create(
            model=MODEL, input=STORY, background=True, max_output_tokens=600, extra_body=PLAIN
        )
        deadline = time.monotonic() + 60
        while True:  # kill once text is being written
            now = client.responses.retrieve(response.id)
            if now.output and now.output[0].content and now.output[0].content[0].text:
                break
            assert time.monotonic() < deadline and now.status not in TERMINAL, now.status
            time.sleep(0.05)
        assert first.process is not None
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(10)
        key = first.key
    assert now.status == "in_progress"
    with running_server(tmp_path, model=model, log_name="second.log") as second:
        client = client_of(second, key)
        finished = settled(client, response.id, timeout=120)
        assert finished.status in ("completed", "incomplete"), finished.status
        assert finished.output_text.strip()
        headers = {"Authorization": f"Bearer {key}"}
        raw = httpx.get(f"{second.url}/v1/responses/{response.id}", headers=headers).json()
        run = httpx.get(f"{second.url}/v1/chat/runs/{raw['sogni_run_id']}/events", headers=headers)
        assert "run_resumed" in [e["type"] for e in run.json()["data"]["events"]]
        events = sse_events(second, f"/v1/responses/{response.id}?stream=true", key)
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        assert events[-1]["type"] == f"response.{finished.status}"


def test_hosted_tools_as_output_items(client: openai.OpenAI) -> None:
    """Hosted calls are `sogni_tool_call` items, which the SDK parses, in the stream of a
    response answered at once and in a background response's run alike."""
    stream = client.responses.create(
        model=MODEL,
        input="Ask me which style my video should have.",
        tool_choice={"type": "function", "name": "ask_clarifying_question"},
        max_output_tokens=300,
        stream=True,
        extra_body={"sogni_tools": "creative-agent", "temperature": 0},
    )
    events = list(stream)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response
    assert events[-1].type == "response.completed"
    kinds = [item.type for item in final.output]
    assert kinds[0] == "sogni_tool_call" and kinds[-1] == "message", kinds
    assert final.output[0].name == "ask_clarifying_question"  # type: ignore[union-attr]
    assert final.output_text.strip()

    started = client.responses.create(
        model=MODEL,
        input="Make a picture of a red fox, 256 by 256 pixels.",
        tool_choice={"type": "function", "name": "generate_image"},
        max_output_tokens=120,
        background=True,
        extra_body={"sogni_tools": "creative-tools", "temperature": 0},
    )
    # The tiny model may go on for rounds after the image: the run's first call is enough.
    deadline = time.monotonic() + 60
    while True:
        now = client.responses.retrieve(started.id)
        calls = [i.model_dump() for i in now.output if i.type == "sogni_tool_call"]
        if (calls and calls[0]["status"] != "in_progress") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    client.responses.cancel(started.id)
    assert calls and calls[0]["name"] == "generate_image" and calls[0]["status"] == "completed"
    artifact = calls[0]["result"]["artifacts"][0]
    assert artifact["mediaType"] == "image"
    assert httpx.get(artifact["url"], timeout=30).status_code == 200
