"""Hosted tools in `POST /v1/chat/completions`: the in-process app on the real default model
(SmolLM2-135M) runs the agent loop. Forced tool choices (temperature 0) fix which tool is
called; the tiny model picks the argument values, so the checks read them from the result.

The app allows two rounds: the forced call, then an answer in words (the last round has no
tools), which keeps every turn short.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from PIL import Image

from sogni_intelligence.agent.loop import AgentLoop, Session
from sogni_intelligence.agent.surfaces import hosted_tools
from sogni_intelligence.api.chat_completions.protocol import ChatCompletionRequest
from sogni_intelligence.api.chat_completions.serving import AgentTurn
from sogni_intelligence.errors import ErrorType
from sogni_intelligence.store.records import RecordStore
from sogni_intelligence.tools.catalog import CATALOG
from sogni_intelligence.tools.image_args import RestorePhotoArgs
from sogni_intelligence.tools.media_context import MediaContext
from tests.conftest import embedded_settings, in_process_app
from tests.integration.tools.conftest import ffprobe

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

#: Room for a forced call's JSON; the closing answer in words stops there too.
MAX_TOKENS = 120
WORKFLOWS = "/v1/creative-agent/workflows"
ERROR_TYPES = set(get_args(ErrorType))
# The surfaces as the spec lists them (§7.1), written out here rather than read from the catalog.
CREATIVE_TOOLS = {
    *("generate_image", "edit_image", "apply_style", "restore_photo", "refine_result"),
    *("change_angle", "upscale_image"),
    *("generate_video", "animate_photo", "sound_to_video", "video_to_video", "extend_video"),
    *("replace_video_segment", "stitch_video", "orbit_video", "dance_montage"),
    *("overlay_video", "add_subtitles", "upscale_video"),
    *("generate_music", "generate_speech"),
    *("analyze_image", "analyze_video", "extract_metadata"),
    *("enhance_prompt", "compose_script", "compose_lyrics", "compose_instrumental"),
    *("image_to_3d", "remove_background", "segment_image"),
}
AGENT_ONLY = {
    *("ask_clarifying_question", "finalize_response", "create_asset_manifest"),
    *("inspect_asset", "label_asset", "map_assets_for_model", "validate_asset_references"),
    *("compose_workflow", "compose_workflow_template"),
}
APP_ONLY = {"manage_memory", "resolve_personas", "set_content_filter"}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def forced(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


def png(size: tuple[int, int], color: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def data_uri(raw: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(raw).decode()


def local(url: str) -> str:
    """Path and query of one of our absolute URLs, to fetch it through the ASGI client."""
    parsed = httpx.URL(url)
    return parsed.raw_path.decode()


class Api:
    def __init__(self, client: httpx.AsyncClient, app: FastAPI, key: str, owner: str) -> None:
        self.client = client
        self.app = app
        self.owner = owner
        self.auth = {"Authorization": f"Bearer {key}"}

    @property
    def records(self) -> RecordStore:
        return self.app.state.server.workflows.deps.records

    async def chat(self, text: str | list[dict[str, Any]], **body: Any) -> httpx.Response:
        headers = body.pop("headers", self.auth)
        payload = {
            "messages": [{"role": "user", "content": text}],
            "temperature": 0,
            "max_tokens": MAX_TOKENS,
            **body,
        }
        return await self.client.post("/v1/chat/completions", json=payload, headers=headers)

    async def other_key(self) -> dict[str, str]:
        """Headers of a fresh key, whose workflow list starts empty."""
        key, _ = await self.app.state.server.keys.create("hosted-chat-other")
        return {"Authorization": f"Bearer {key}"}

    async def workflows_of(self, headers: dict[str, str]) -> list[dict[str, Any]]:
        response = await self.client.get(WORKFLOWS, params={"limit": 200}, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()["data"]["workflows"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    data: Path = tmp_path_factory.mktemp("hosted-chat")
    settings = embedded_settings(data, n_ctx=8192).model_copy(update={"agent_max_rounds": 2})
    async with in_process_app(settings, timeout_s=600) as running:
        yield Api(running.http, running.app, running.key, running.owner)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def generated(api: Api) -> dict[str, Any]:
    """One completed turn that forced `generate_image` (shared: it is the slow part)."""
    response = await api.chat(
        "Make a picture of a red fox, 256 by 256 pixels.",
        tool_choice=forced("generate_image"),
        app_source="body-app",
        headers={**api.auth, "X-Token-Type": "sogni", "X-App-Source": "header-app"},
    )
    assert response.status_code == 200, response.text
    return response.json()


# --- media tools run server-side ------------------------------------------------------------


async def test_forced_generate_image_runs_as_a_workflow(api: Api, generated: dict) -> None:
    body = generated
    assert body["object"] == "chat.completion"
    choice = body["choices"][0]
    # The second (last) round has no tools, so the turn ends in words.
    assert choice["finish_reason"] in ("stop", "length")
    assert "tool_calls" not in choice["message"]
    assert isinstance(choice["message"]["content"], str)
    assert body["usage"]["total_tokens"] == (
        body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )
    [result] = body["sogni_tool_results"]
    assert result["ok"] is True and result["tool"] == "generate_image", result
    assert result["round"] == 0 and result["toolCallId"].startswith("call_")
    assets = result["output_assets"]
    assert assets and result["startIndex"] == 0
    assert result["indices"] == list(range(len(assets)))
    assert (
        result["urls"] == [asset["url"] for asset in assets] and result["url"] == assets[0]["url"]
    )

    [workflow] = body["creative_workflows"]
    workflow_id = result["workflowId"]
    assert workflow_id.startswith("wf_") and workflow["workflowId"] == workflow_id
    assert workflow["status"] == "completed"
    assert httpx.URL(workflow["url"]).path == f"{WORKFLOWS}/{workflow_id}"
    assert workflow["eventsUrl"] == workflow["url"] + "/events"
    assert workflow["streamUrl"] == workflow["url"] + "/events/stream"

    arguments = result["arguments"]
    want = (arguments.get("width") or 1024, arguments.get("height") or 1024)
    for asset in assets:
        download = await api.client.get(local(asset["url"]))  # signed: no key needed
        assert download.status_code == 200, download.text
        assert download.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(download.content)) as image:
            assert image.format == "PNG" and image.size == want
            image.load()

    record = await api.client.get(local(workflow["url"]), headers=api.auth)
    assert record.status_code == 200, record.text
    record_body = record.json()["data"]["workflow"]
    assert record_body["status"] == "completed"
    # The turn's billing fields go with its job: the header's token type, the body's app.
    assert record_body["scope"]["tokenType"] == "sogni"
    assert record_body["scope"]["appSource"] == "body-app"
    [step] = record_body["steps"]
    assert step["toolName"] == "generate_image" and step["status"] == "completed"
    assert [a["id"] for a in record_body["artifacts"]] == [a["asset_id"] for a in assets]
    events = await api.client.get(local(workflow["eventsUrl"]), headers=api.auth)
    types = [event["type"] for event in events.json()["data"]["events"]]
    assert "step_completed" in types and types[-1] == "workflow_completed"


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ({}, {"X-Token-Type": "gold"}),
        ({}, {"X-App-Source": "app;rm -rf"}),
        ({"token_type": "gold"}, {}),
        ({"app_source": "<script>"}, {}),
        ({"billingMode": "free"}, {}),
    ],
    ids=["token-header", "app-header", "token-body", "app-body", "billing-mode"],
)
async def test_bad_billing_fields_are_400(
    api: Api, body: dict[str, str], headers: dict[str, str]
) -> None:
    response = await api.chat("Hello", headers={**api.auth, **headers}, **body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("tool", "text"),
    [
        ("restore_photo", "Restore the uploaded photo, index -1."),
        ("animate_photo", "Make a 2 second video from the uploaded photo."),
    ],
    ids=["restore_photo", "animate_photo"],
)
async def test_a_returned_image_feeds_the_next_request_as_an_upload(
    api: Api, generated: dict, tool: str, text: str
) -> None:
    """Indices live within one request: the next one passes the image back as a reference
    (our own signed URL, read from the store), where it is upload -1."""
    image = generated["sogni_tool_results"][0]["output_assets"][0]
    response = await api.chat(
        text,
        tool_choice=forced(tool),
        media_references=[{"kind": "image", "url": image["url"]}],
        max_tokens=400,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    [result] = body["sogni_tool_results"]
    assert result["tool"] == tool
    [workflow] = body["creative_workflows"]
    assert workflow["workflowId"] == result["workflowId"]
    record = await api.records.get(result["workflowId"], api.owner)
    assert record is not None
    # The workflow starts from the request's media: the referenced image is its upload -1.
    assert record.data["mediaContext"]["uploads"]["image"] == [image["asset_id"]]
    assert record.data["mediaContext"]["generated"]["image"] == []
    if not result["ok"]:
        # The model may have pointed at an index that does not exist here; it sees why.
        assert workflow["status"] == "failed"
        assert result["error_type"] in ("PARAMETER_INVALID", "ASSET_NOT_FOUND"), result
        assert result["message"]
        return
    assert workflow["status"] == "completed"
    output = result["output_assets"][0]
    if tool == "animate_photo":
        assert result["videoStartIndex"] == 0 and result["indices"][0] == 0
        assert output["metadata"]["source_image"] == image["asset_id"]
    else:  # a restored photo is sized from its source (a fresh picture would be 1024 square)
        assert result["startIndex"] == 0 and result["indices"] == [0]
        args = RestorePhotoArgs.model_validate(result["arguments"])
        want, _ = args.output_size((image["width"], image["height"]))
        assert (output["width"], output["height"]) == want, result["arguments"]


def _call(number: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"call_fixed{number}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


async def test_indices_chain_across_calls_of_one_turn(api: Api) -> None:
    """The loop's tool path (`AgentLoop.run_calls`) with fixed calls, no model choice involved:
    two images in one round, then a clip from image 0 in the next round, which is not the
    latest image an omitted index would take."""
    agent: AgentLoop = api.app.state.server.chat.agent
    entry = api.app.state.server.chat.registry.resolve(None)
    session = Session(
        owner=api.owner,
        engine=entry.engine,
        request={"messages": [{"role": "user", "content": "two pictures, then a clip"}]},
        client_tools=[],
        hosted=hosted_tools("creative-tools", set()),
        tool_choice="auto",
        media=MediaContext(),
    )
    picture = {"prompt": "a lighthouse at dusk", "width": 256, "height": 256}
    pictures = await agent.run_calls(
        session,
        [
            _call(1, "generate_image", {**picture, "seed": 1}),
            _call(2, "generate_image", {**picture, "seed": 2}),
        ],
        0,
    )
    assert all(result["ok"] for result in pictures), pictures
    # Calls of one round run at once: each result says where its image landed.
    assert sorted(result["startIndex"] for result in pictures) == [0, 1]
    generated = [record.id for record in session.media.generated["image"]]
    for result in pictures:
        assert result["indices"] == [result["startIndex"]]
        assert generated[result["startIndex"]] == result["output_assets"][0]["asset_id"]
    first_id, second_id = generated

    clip = {"prompt": "slow zoom in", "sourceImageIndex": 0, "duration": 2}
    [video] = await agent.run_calls(
        session, [_call(3, "animate_photo", {**clip, "width": 256, "height": 256})], 1
    )
    assert video["ok"] is True, video
    assert video["videoStartIndex"] == 0 and video["indices"] == [0]
    assert video["media_type"] == "video"
    assert video["output_assets"][0]["metadata"]["source_image"] == first_id
    assert [r.id for r in session.media.generated["image"]] == [first_id, second_id]
    assert [r.id for r in session.media.generated["video"]] == [
        video["output_assets"][0]["asset_id"]
    ]

    # The video's workflow was seeded with the turn's media, so index 0 meant the same there.
    record = await api.records.get(video["workflow_id"], api.owner)
    assert record is not None and record.status == "completed"
    assert record.data["mediaContext"]["generated"]["image"] == [first_id, second_id]
    assert [r["round"] for r in session.tool_results] == [0, 0, 1]
    assert [w["status"] for w in session.workflows] == ["completed"] * 3
    stored = await api.app.state.server.assets.get(video["output_assets"][0]["asset_id"], api.owner)
    assert stored is not None
    report = ffprobe(await api.app.state.server.assets.local_path(stored))
    stream = next(s for s in report["streams"] if s["codec_type"] == "video")
    assert (stream["width"], stream["height"]) == (256, 256)
    assert 1.8 <= float(report["format"]["duration"]) <= 2.3


async def _forced_call(api: Api, text: str, tool: str, media: MediaContext) -> dict[str, Any]:
    """The arguments the model writes for a forced call of `tool` (one round, nothing run)."""
    agent: AgentLoop = api.app.state.server.chat.agent
    session = Session(
        owner=api.owner,
        engine=api.app.state.server.chat.registry.resolve(None).engine,
        request={"messages": [{"role": "user", "content": text}], "temperature": 0},
        client_tools=[],
        hosted=hosted_tools("creative-tools", set()),
        tool_choice=forced(tool),
        media=media,
    )
    outputs = [o async for o in agent.round(session, session.request["messages"], 0)]
    [call] = outputs[-1].calls
    assert call["function"]["name"] == tool
    return json.loads(call["function"]["arguments"])


async def test_a_forced_call_can_only_name_media_that_exists(api: Api) -> None:
    """The request asks for images that are not there; the grammar offers only what is: no
    index at all in an empty session, and only upload -1 when one photo was uploaded."""
    empty = await _forced_call(
        api, "Start from image 3 and draw a cat.", "generate_image", MediaContext()
    )
    assert "sourceImageIndex" not in empty, empty
    photo = await api.app.state.server.assets.put_bytes(api.owner, png((64, 64), "blue"))
    one_upload = MediaContext()
    one_upload.add_upload(photo)
    for text in ("Edit image 7: make it red.", "Use images 2, 5 and 9 to make a collage."):
        arguments = await _forced_call(api, text, "edit_image", one_upload)
        assert arguments.get("sourceImageIndex") in (None, -1), arguments
        assert set(arguments.get("referenceImageIndices") or []) <= {-1}, arguments


# --- uploads --------------------------------------------------------------------------------


async def test_references_and_image_parts_become_uploads_on_a_text_only_model(
    api: Api, generated: dict
) -> None:
    own = generated["sogni_tool_results"][0]["output_assets"][0]
    referenced = png((64, 48), "teal")
    attached = png((40, 30), "purple")
    content = [
        {"type": "text", "text": "List the images I uploaded."},
        {"type": "image_url", "image_url": {"url": data_uri(attached)}},
    ]
    response = await api.chat(
        content,
        sogni_tools="creative-agent",
        tool_choice=forced("create_asset_manifest"),
        media_references=[
            {"kind": "image", "data": data_uri(referenced)},
            {"kind": "image", "url": own["url"]},
        ],
    )
    assert response.status_code == 200, response.text
    [result] = response.json()["sogni_tool_results"]
    assert result["ok"] is True and result["tool"] == "create_asset_manifest", result
    assert result["arguments"].get("media_type") in (None, "image")
    uploads = {a["index"]: a for a in result["assets"] if a["origin"] == "upload"}
    assert sorted(uploads) == [-3, -2, -1] and result["count"] == len(result["assets"])
    # media_references first, in order, then the message's image parts.
    assert uploads[-1]["type"] == "image" and uploads[-1]["size_bytes"] == len(referenced)
    assert (uploads[-1]["width"], uploads[-1]["height"]) == (64, 48)
    assert uploads[-2]["asset_id"] == own["asset_id"]  # our own URL: the stored asset itself
    assert (uploads[-3]["width"], uploads[-3]["height"]) == (40, 30)
    assert uploads[-3]["size_bytes"] == len(attached)


async def test_the_model_is_told_which_upload_index_is_which(api: Api) -> None:
    """References first, then the message's images; on a text-only model each image in a
    message becomes a marker the note explains."""
    body = ChatCompletionRequest.model_validate(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Compare these."},
                        {"type": "image_url", "image_url": {"url": data_uri(png((40, 30), "red"))}},
                    ],
                }
            ],
            "media_references": [{"kind": "image", "data": data_uri(png((32, 32), "blue"))}],
        }
    )
    service = api.app.state.server.chat
    turn = AgentTurn(service, await service.prepare(body))
    session = await turn.session(api.owner, body.media_references or [])
    system, user = session.request["messages"]
    assert system["role"] == "system" and system["content"].endswith(
        "by the index tools take: image -1 = media reference 1; image -2 = attached image 1."
    )
    assert user["content"] == "Compare these.\n[attached image 1]"
    assert [record.width for record in session.media.uploads["image"]] == [32, 40]


async def test_a_media_reference_that_is_not_what_its_kind_says_is_400(api: Api) -> None:
    response = await api.chat(
        "What is this?",
        tool_choice=forced("extract_metadata"),
        media_references=[{"kind": "video", "data": data_uri(png((32, 32), "red"))}],
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "media_references.0.kind"


# --- tools that do not run here -------------------------------------------------------------


async def test_a_forced_client_tool_comes_back_to_the_client(api: Api) -> None:
    other = await api.other_key()
    response = await api.chat(
        "What is the weather in Oslo?",
        tools=[WEATHER],
        tool_choice=forced("get_weather"),
        headers=other,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert isinstance(json.loads(call["function"]["arguments"]), dict)
    assert call["id"].startswith("call_")
    assert body["sogni_tool_results"] == [] and body["creative_workflows"] == []
    assert await api.workflows_of(other) == []


async def test_with_execution_off_a_hosted_call_comes_back_raw(api: Api) -> None:
    other = await api.other_key()
    response = await api.chat(
        "Make a picture of a red fox.",
        tool_choice=forced("generate_image"),
        sogni_tool_execution=False,
        headers=other,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "generate_image"
    assert json.loads(call["function"]["arguments"])["prompt"]
    assert not body.get("sogni_tool_results") and not body.get("creative_workflows")
    assert await api.workflows_of(other) == []


# --- surfaces -------------------------------------------------------------------------------

BROKEN_FORMAT = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 5}}}


async def _offered(api: Api, surface: object, names: set[str]) -> set[str]:
    """The names a surface accepts as a named tool_choice. The request also carries a broken
    response_format, which is checked after tool_choice: a 400 on `tool_choice` means the
    name is not offered, a 400 on the format means it is (and no model work starts)."""
    offered = set()
    body = {"response_format": BROKEN_FORMAT}
    if surface is not None:
        body["sogni_tools"] = surface
    for name in sorted(names):
        response = await api.chat("hi", tool_choice=forced(name), **body)
        assert response.status_code == 400, response.text
        param = response.json()["error"]["param"]
        assert param in ("tool_choice", "response_format.json_schema.schema"), param
        if param != "tool_choice":
            offered.add(name)
    return offered


@pytest.mark.parametrize(
    ("surface", "expected"),
    [
        (None, CREATIVE_TOOLS),
        (True, CREATIVE_TOOLS),
        ("rich", CREATIVE_TOOLS),
        ("creative-tools", CREATIVE_TOOLS),
        ("creative-agent", CREATIVE_TOOLS | AGENT_ONLY),
        (False, set()),
        ("none", set()),
    ],
)
async def test_each_surface_offers_exactly_its_tools(
    api: Api, surface: object, expected: set[str]
) -> None:
    names = set(CATALOG) | CREATIVE_TOOLS | AGENT_ONLY | APP_ONLY
    assert await _offered(api, surface, names) == expected


async def test_compose_workflow_is_refused_on_creative_tools(api: Api) -> None:
    refused = await api.chat(
        "Plan a video.", tool_choice=forced("compose_workflow"), sogni_tools="creative-tools"
    )
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "tool_choice"


async def test_a_forced_compose_workflow_on_creative_agent_is_a_call(api: Api) -> None:
    accepted = await api.chat(
        "Plan a short video about a lantern.",
        tool_choice=forced("compose_workflow"),
        sogni_tools="creative-agent",
        sogni_tool_execution=False,
        max_tokens=300,
    )
    assert accepted.status_code == 200, accepted.text
    choice = accepted.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls", choice
    [call] = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "compose_workflow"
    assert json.loads(call["function"]["arguments"])["brief"]


@pytest.mark.parametrize("surface", ["none", False])
async def test_no_tools_at_all_refuses_a_required_or_named_choice(
    api: Api, surface: object
) -> None:
    required = await api.chat("hi", tool_choice="required", sogni_tools=surface)
    assert required.status_code == 400 and required.json()["error"]["param"] == "tool_choice"
    named = await api.chat("hi", tool_choice=forced("generate_image"), sogni_tools=surface)
    assert named.status_code == 400 and named.json()["error"]["param"] == "tool_choice"


# --- failures and loop endings --------------------------------------------------------------


async def test_a_call_the_tool_rejects_is_a_failed_result_not_an_error(api: Api) -> None:
    """Nothing was generated or uploaded, so an upscale cannot run: the forced call is answered
    with what is missing, before any workflow starts, and the request still succeeds."""
    response = await api.chat("Upscale my photo.", tool_choice=forced("upscale_image"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["choices"][0]["finish_reason"] in ("stop", "length")
    [result] = body["sogni_tool_results"]
    assert result["ok"] is False and result["success"] is False, result
    assert result["tool"] == "upscale_image"
    assert result["error_type"] in ERROR_TYPES
    assert result["error_type"] == "PARAMETER_INVALID"
    assert "needs an image" in result["message"] and "no image yet" in result["message"]
    assert result["retryable"] is False
    assert body["creative_workflows"] == [] and result["workflowId"] is None


#: A prompt the tiny model turns into a short, complete question call (the grammar's length
#: limits end the call well inside 300 tokens even when the model repeats itself).
ASK = "Ask me which style my video should have."


async def test_a_clarifying_question_ends_the_turn(api: Api) -> None:
    response = await api.chat(
        ASK,
        sogni_tools="creative-agent",
        tool_choice=forced("ask_clarifying_question"),
        max_tokens=300,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    [result] = body["sogni_tool_results"]
    assert result["ok"] is True and result["tool"] == "ask_clarifying_question", result
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"] == {"role": "assistant", "content": result["question"]}
    assert result["question"] and body["creative_workflows"] == []


async def test_a_streamed_clarifying_question_is_streamed_as_the_answer(api: Api) -> None:
    """The plain response's content is the question; a stream must carry the same text."""
    payload = {
        "messages": [{"role": "user", "content": ASK}],
        "temperature": 0,
        "max_tokens": 300,
        "stream": True,
        "sogni_tools": "creative-agent",
        "tool_choice": forced("ask_clarifying_question"),
    }
    response = await api.client.post("/v1/chat/completions", json=payload, headers=api.auth)
    assert response.status_code == 200
    frames = [f for f in response.text.split("\n\n") if f.startswith("data: {")]
    chunks = [json.loads(frame[6:]) for frame in frames]
    closing = chunks[-1]
    [result] = closing["sogni_tool_results"]
    assert result["ok"] is True and closing["choices"][0]["finish_reason"] == "stop"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert result["question"] and text == result["question"]


# --- streaming ------------------------------------------------------------------------------


async def test_streamed_turn_with_tool_progress_and_extras(api: Api) -> None:
    payload = {
        "messages": [{"role": "user", "content": "Make a picture of a small boat, 256 by 256."}],
        "temperature": 0,
        "max_tokens": MAX_TOKENS,
        "stream": True,
        "stream_options": {"include_usage": True},
        "tool_choice": forced("generate_image"),
    }
    async with api.client.stream(
        "POST", "/v1/chat/completions", json=payload, headers=api.auth
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = (await response.aread()).decode()
    frames = [frame for frame in text.split("\n\n") if frame]
    assert all(frame.startswith((": ", "data: ")) for frame in frames), frames
    assert frames[-1] == "data: [DONE]"
    comments = [(i, frame) for i, frame in enumerate(frames) if frame.startswith(":")]
    positions = [i for i, frame in enumerate(frames[:-1]) if frame.startswith("data: ")]
    chunks = [json.loads(frames[i][6:]) for i in positions]

    first = chunks[0]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == first["id"] for c in chunks)
    assert first["choices"][0]["delta"]["role"] == "assistant"
    *body, closing, usage = chunks
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] > 0
    assert closing["choices"][0]["finish_reason"] in ("stop", "length")
    for chunk in [*body, closing]:
        [choice] = chunk["choices"]
        assert choice["index"] == 0 and isinstance(choice["delta"], dict)
        assert "tool_calls" not in choice["delta"]
    assert all(choice["finish_reason"] is None for c in body for choice in c["choices"])
    assert all("sogni_tool_results" not in c for c in [*body, usage])

    [result] = closing["sogni_tool_results"]
    assert result["ok"] is True and result["tool"] == "generate_image", result
    [workflow] = closing["creative_workflows"]
    assert workflow["status"] == "completed" and workflow["workflowId"] == result["workflowId"]
    call_id = result["toolCallId"]
    said = [frame for _, frame in comments]
    assert [frame for frame in said if frame.startswith(": tool ")] == [
        f": tool generate_image {call_id} started",
        f": tool generate_image {call_id} ok",
    ]
    # Between the two, the job's progress ticks, if any, name the call.
    ticks = [frame for frame in said if frame.startswith(": tool_call_progress ")]
    assert said[1 : 1 + len(ticks)] == ticks
    assert all(json.loads(t.split(" ", 2)[2])["toolCallId"] == call_id for t in ticks)
    assert all(i < positions[-2] for i, _ in comments)  # progress precedes the closing chunk


async def test_a_streamed_video_call_streams_its_progress(api: Api) -> None:
    """A video job of a few seconds: the stream carries several `tool_call_progress` comments
    for the call, with increasing fractions inside (0, 1) and an ETA, before the call ends."""
    payload = {
        "messages": [
            {
                "role": "user",
                "content": "Make a 10 second video of ocean waves at 1280 by 720, no audio.",
            }
        ],
        "temperature": 0,
        "max_tokens": MAX_TOKENS,
        "stream": True,
        "tool_choice": forced("generate_video"),
    }
    async with api.client.stream(
        "POST", "/v1/chat/completions", json=payload, headers=api.auth
    ) as response:
        assert response.status_code == 200
        text = (await response.aread()).decode()
    frames = [frame for frame in text.split("\n\n") if frame]
    closing = json.loads(frames[-2][6:]) if frames[-2].startswith("data: ") else {}
    [result] = closing["sogni_tool_results"]
    assert result["ok"] is True and result["tool"] == "generate_video", result
    call_id = result["toolCallId"]
    started = frames.index(f": tool generate_video {call_id} started")
    ended = frames.index(f": tool generate_video {call_id} ok")
    ticks = [
        (i, json.loads(frame.split(" ", 2)[2]))
        for i, frame in enumerate(frames)
        if frame.startswith(": tool_call_progress ")
    ]
    assert all(started < i < ended for i, _ in ticks)
    inside = [tick["progress"] for _, tick in ticks if 0 < tick["progress"] < 1]
    assert len(inside) > 1, ticks
    assert inside == sorted(inside) and len(set(inside)) == len(inside)
    assert all(tick["toolCallId"] == call_id and tick["status"] == "running" for _, tick in ticks)
    assert all(tick["etaSeconds"] is not None for _, tick in ticks)
    assert {tick["workflowId"] for _, tick in ticks} == {result["workflowId"]}
