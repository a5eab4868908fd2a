"""Hosted tools through the official clients against the real server process: the
`sogni-client` SDK (`chat.hosted.create`, `chat.hosted.execute_tool`, `workflows.*`) and the
`openai` SDK (Sogni fields in `extra_body`, our extras in `model_extra`).

The server allows two agent rounds (a forced call, then an answer in words), so each turn
stays short on the tiny default model.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from PIL import Image
from sogni_client import SogniClient

from tests.e2e.conftest import RunningServer, running_server

pytestmark = pytest.mark.slow

MODEL = "qwen3.6-35b-a3b-gguf-iq4xs"
ASK = "Ask me which style my video should have."
FOX = [{"role": "user", "content": "Make a picture of a red fox, 256 by 256 pixels."}]


def forced(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


@pytest.fixture(scope="module")
def hosted_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The server with at most two agent rounds per turn."""
    with running_server(
        tmp_path_factory.mktemp("hosted"), settings={"SOGNI_AGENT_MAX_ROUNDS": "2"}
    ) as running:
        yield running


@asynccontextmanager
async def sdk(server: RunningServer) -> AsyncIterator[SogniClient]:
    sogni = await SogniClient.create(
        api_key=server.key, rest_endpoint=server.url, disable_socket=True, app_source="e2e"
    )
    try:
        yield sogni
    finally:
        await sogni.aclose()


def _png_size(url: str) -> tuple[int, int]:
    download = httpx.get(url, timeout=30)  # signed URL: no key
    assert download.status_code == 200 and download.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(download.content)) as image:
        image.load()
        return image.size


def _check_generated(result: dict[str, Any], workflows: list[dict[str, Any]]) -> None:
    assert result["ok"] is True and result["tool"] == "generate_image", result
    assert result["startIndex"] == 0 and result["indices"][0] == 0
    [workflow] = workflows
    assert workflow["workflowId"] == result["workflowId"] and workflow["status"] == "completed"
    arguments = result["arguments"]
    want = (arguments.get("width") or 1024, arguments.get("height") or 1024)
    assert _png_size(result["url"]) == want


# --- sogni-client ---------------------------------------------------------------------------


async def test_sdk_hosted_create_runs_generate_image(hosted_server: RunningServer) -> None:
    async with sdk(hosted_server) as sogni:
        reply = await sogni.chat.hosted.create(
            model=MODEL,
            messages=FOX,
            tool_choice=forced("generate_image"),
            sogni_tools="creative-tools",
            sogni_tool_execution=True,
            token_type="spark",
            temperature=0,
            max_tokens=120,
        )
        assert reply["object"] == "chat.completion"
        assert reply["choices"][0]["finish_reason"] in ("stop", "length")
        [result] = reply["sogni_tool_results"]
        _check_generated(result, reply["creative_workflows"])
        record = await sogni.workflows.get(result["workflowId"])
        assert record["status"] == "completed"
        ids = [a["id"] for a in record["artifacts"]]
        assert ids == [a["asset_id"] for a in result["output_assets"]]


COMPOSITION = [
    (
        "enhance_prompt",
        {
            "prompt": "a fox in snow",
            "target_output": "image_prompt",
            "destination_model": "z-turbo",
        },
        ("prompt",),
    ),
    ("compose_script", {"brief": "a fox in snow", "scene_count": 1}, ("script",)),
    ("compose_lyrics", {"prompt": "a fox in snow", "duration_seconds": 30}, ("lyrics",)),
    ("compose_instrumental", {"prompt": "a winter dawn", "duration_seconds": 30}, ("structure",)),
    (
        "compose_workflow_template",
        {"brief": "a fox in snow", "name": "Fox clip", "scene_count": 1},
        ("template_draft", "plan"),
    ),
]


@pytest.mark.parametrize(
    ("tool", "arguments", "keys"), COMPOSITION, ids=[c[0] for c in COMPOSITION]
)
async def test_sdk_execute_tool_gives_each_tools_result_key(
    hosted_server: RunningServer, tool: str, arguments: dict[str, Any], keys: tuple[str, ...]
) -> None:
    async with sdk(hosted_server) as sogni:
        response = await sogni.chat.hosted.execute_tool(tool=tool, arguments=arguments)
    assert response["status"] == "success" and response["data"]["tool"] == tool
    result = response["data"]["result"]
    assert result["ok"] is True, result
    for key in keys:
        assert result[key], key
    if tool == "compose_workflow_template":
        assert result["plan"]["steps"] and result["template_draft"]["name"] == "Fox clip"


async def test_sdk_composed_workflow_runs_to_completion(hosted_server: RunningServer) -> None:
    async with sdk(hosted_server) as sogni:
        response = await sogni.chat.hosted.execute_tool(
            tool="compose_workflow",
            arguments={
                "brief": "a fox in snow",
                "scene_count": 1,
                "duration_seconds": 2,
                "aspect_ratio": "1:1",
            },
        )
        result = response["data"]["result"]
        assert result["ok"] is True and result["steps"], result
        workflow = await sogni.workflows.start(
            input={"title": result["title"], "steps": result["steps"]}, confirm_cost=True
        )
        statuses = [
            frame["data"]["status"]
            async for frame in sogni.workflows.stream_events(workflow["workflowId"])
        ]
        assert statuses[-1] == "completed"
        final = await sogni.workflows.get(workflow["workflowId"])
        assert final["status"] == "completed"
        assert any(artifact["kind"] == "video" for artifact in final["artifacts"])


# --- openai ---------------------------------------------------------------------------------


@pytest.fixture
def client(hosted_server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=hosted_server.key, base_url=f"{hosted_server.url}/v1", max_retries=0, timeout=120
    )


def test_openai_forced_generate_image(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL,
        messages=FOX,  # type: ignore[arg-type]
        temperature=0,
        max_tokens=120,
        tool_choice=forced("generate_image"),  # type: ignore[arg-type]
        extra_body={"sogni_tools": "creative-tools", "sogni_tool_execution": True},
    )
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.choices[0].message.tool_calls is None
    extra = reply.model_extra or {}
    # The forced call is the first; a small model may call another tool in a later round (not
    # generate_image again: it did its work), and every call it makes is a valid one.
    results = extra["sogni_tool_results"]
    invalid = [
        r for r in results if r.get("error_type") in ("PARAMETER_INVALID", "ASSET_NOT_FOUND")
    ]
    assert not invalid, invalid
    _check_generated(results[0], extra["creative_workflows"][:1])


def test_openai_stream_parses_and_ends_with_our_extras(client: openai.OpenAI) -> None:
    """A hosted tool that ends the turn: its progress goes out as SSE comments, which the SDK
    must skip, and the last chunk carries the results."""
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": ASK}],
        temperature=0,
        max_tokens=300,
        stream=True,
        tool_choice=forced("ask_clarifying_question"),  # type: ignore[arg-type]
        extra_body={"sogni_tools": "creative-agent"},
    )
    chunks = list(stream)
    assert chunks and all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    extra = last.model_extra or {}
    [result] = extra["sogni_tool_results"]
    assert result["ok"] is True and result["tool"] == "ask_clarifying_question"
    assert extra["creative_workflows"] == []
    assert not any((c.model_extra or {}).get("sogni_tool_results") for c in chunks[:-1])
    # The turn's answer is the question, streamed as content like any answer.
    assert result["question"] and text == result["question"]


def test_openai_wire_streams_the_same_extras(hosted_server: RunningServer, tmp_path: Path) -> None:
    """The raw frames of the stream above: comments for progress, then `[DONE]`."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": ASK}],
        "temperature": 0,
        "max_tokens": 300,
        "stream": True,
        "tool_choice": forced("ask_clarifying_question"),
        "sogni_tools": "creative-agent",
    }
    headers = {"Authorization": f"Bearer {hosted_server.key}"}
    with httpx.stream(
        "POST", f"{hosted_server.url}/v1/chat/completions", json=body, headers=headers, timeout=120
    ) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    comments = [line for line in lines if line.startswith(":")]
    assert [line.split()[-1] for line in comments] == ["started", "ok"]
    assert all(" ask_clarifying_question call_" in line for line in comments)
