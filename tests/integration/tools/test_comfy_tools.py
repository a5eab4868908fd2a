"""Hosted tools bound to ComfyUI workflows, against a fake ComfyUI run over HTTP and a websocket."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from sogni_intelligence.agent.loop import Session, _offered
from sogni_intelligence.config import ComfyToolBinding, Settings
from sogni_intelligence.media.ffmpeg import ffmpeg_exe
from sogni_intelligence.tools.base import ToolContext, ToolServices, execute
from sogni_intelligence.tools.call_schema import offered_definition
from sogni_intelligence.tools.catalog import CATALOG
from sogni_intelligence.tools.comfy_tools import bind_tools
from sogni_intelligence.tools.media_context import MediaContext
from tests.integration.tools.conftest import asset_file, ffprobe, upload_image
from tests.integration.tools.fake_image_services import FakeImageServices, png, serve


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeImageServices, str]]:
    services = FakeImageServices()
    with serve(services) as url:
        yield services, url


@pytest.fixture
def comfy(fake: tuple, ctx: ToolContext, tmp_path: Path) -> Iterator[Any]:
    """Bind one tool of `ctx` to a workflow (JSON written here) on the fake server."""
    services, url = fake
    services.outputs = {}

    def bind(tool: str, workflow: dict[str, Any], **options: Any) -> FakeImageServices:
        path = tmp_path / f"{tool}.json"
        path.write_text(json.dumps(workflow))
        binding = ComfyToolBinding(tool=tool, base_url=url, workflow=str(path), **options)
        ctx.services.bound_tools = bind_tools([binding], CATALOG)
        return services

    yield bind


def _mp4(tmp_path: Path) -> bytes:
    out = tmp_path / "clip.mp4"
    source = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-t", "0.5"]
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", *source, "-pix_fmt", "yuv420p", str(out)],
        check=True,
        timeout=60,
    )
    return out.read_bytes()


def _wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\x00\x10" * 4000)
    return out.getvalue()


def _last_inputs(services: FakeImageServices) -> dict[str, Any]:
    workflow = list(services.queued.values())[-1]["prompt"]
    return {node: workflow[node]["inputs"] for node in workflow}


async def test_an_image_tool_runs_its_workflow_with_uploaded_sources(
    ctx: ToolContext, comfy: Any, progress_log: list
) -> None:
    services = comfy(
        "edit_image",
        {
            "1": {"class_type": "LoadImage", "inputs": {"image": "{{image}}"}},
            "2": {"class_type": "LoadImage", "inputs": {"image": "{{image_2}}"}},
            "3": {
                "class_type": "Sampler",
                "inputs": {
                    "text": "{{prompt}}, sharp",
                    "negative": "{{negative_prompt}}",
                    "seed": "{{seed}}",
                    "denoise": "{{strength}}",
                },
            },
        },
    )
    first = await upload_image(ctx, color="orange")
    second = await upload_image(ctx, color="green")
    arguments = {
        "prompt": "a red hat",
        "sourceImageIndex": -2,
        "referenceImageIndices": [-1],
        "seed": 7,
        "strength": 0.6,
    }
    result = await execute(CATALOG["edit_image"], arguments, ctx)
    assert result["ok"], result
    assert result["backend"] == "comfyui" and result["media_type"] == "image"
    with Image.open(await asset_file(ctx, result)) as image:
        assert image.size == (80, 60)
    inputs = _last_inputs(services)
    assert inputs["3"] == {"text": "a red hat, sharp", "negative": "", "seed": 7, "denoise": 0.6}
    source_bytes = (await ctx.store.local_path(second)).read_bytes()
    reference_bytes = (await ctx.store.local_path(first)).read_bytes()
    assert services.uploads[inputs["1"]["image"]] == source_bytes
    assert services.uploads[inputs["2"]["image"]] == reference_bytes
    assert {0.25, 0.5, 0.75} <= {fraction for fraction, _ in progress_log}


async def test_a_tool_without_a_model_here_runs_once_bound(
    ctx: ToolContext, comfy: Any, tmp_path: Path
) -> None:
    tool = CATALOG["remove_background"]
    assert offered_definition(tool, ctx.media) is None
    services = comfy(
        "remove_background",
        {"1": {"class_type": "LoadImage", "inputs": {"image": "{{image}}"}}},
        outputs="image",
    )
    services.outputs = {"images": {"cut.png": png("white")}, "gifs": {"x.mp4": _mp4(tmp_path)}}
    await upload_image(ctx)
    assert offered_definition(ctx.services.bound_tools[tool.name], ctx.media) is not None
    result = await execute(tool, {}, ctx)
    assert result["ok"], result
    assert len(result["output_assets"]) == 1 and result["media_type"] == "image"
    assert result["warnings"] == ["1 other ComfyUI output(s) left out"]

    other = await ctx.store.put_bytes(ctx.owner, png("blue"))
    result = await execute(tool, {"source_image_url": ctx.store.public(other)["url"]}, ctx)
    assert result["ok"], result
    sent = _last_inputs(services)["1"]["image"]
    assert services.uploads[sent] == png("blue")


async def test_video_and_audio_outputs_become_assets(
    ctx: ToolContext, comfy: Any, tmp_path: Path
) -> None:
    services = comfy(
        "generate_video",
        {
            "1": {
                "class_type": "T2V",
                "inputs": {
                    "text": "{{prompt}}",
                    "seconds": "{{duration}}",
                    "length": "{{frames}}",
                    "frame_rate": "{{fps}}",
                },
            }
        },
        outputs="video",
        fps=16,
    )
    services.outputs = {"gifs": {"clip.mp4": _mp4(tmp_path)}}
    result = await execute(CATALOG["generate_video"], {"prompt": "waves", "duration": 5}, ctx)
    assert result["ok"], result
    assert result["media_type"] == "video" and result["videoStartIndex"] == 0
    streams = ffprobe(await asset_file(ctx, result))["streams"]
    assert streams[0]["codec_type"] == "video" and streams[0]["width"] == 64
    sent = {"text": "waves", "seconds": 5, "length": 80, "frame_rate": 16}
    assert _last_inputs(services)["1"] == sent

    services = comfy("generate_music", {"1": {"inputs": {"tags": "{{prompt}}"}}})
    services.outputs = {"audio": {"song.wav": _wav()}}
    result = await execute(CATALOG["generate_music"], {"prompt": "calm piano"}, ctx)
    assert result["ok"], result
    assert result["media_type"] == "audio"
    with wave.open(str(await asset_file(ctx, result))) as audio:
        assert audio.getnframes() == 4000


async def test_failures_carry_comfyuis_message(ctx: ToolContext, comfy: Any) -> None:
    comfy("generate_image", {"1": {"class_type": "Fail", "inputs": {"text": "{{prompt}}"}}})
    result = await execute(CATALOG["generate_image"], {"prompt": "x"}, ctx)
    assert result["ok"] is False and result["error_type"] == "GPU_WORKER_FAILED"
    assert "CUDA out of memory" in result["message"] and "Fail" in result["message"]

    comfy("generate_music", {"1": {"inputs": {"text": "{{lyrics}}"}}})
    result = await execute(CATALOG["generate_music"], {"prompt": "x"}, ctx)
    assert result["ok"] is False and result["error_type"] == "PARAMETER_INVALID"
    assert "needs lyrics" in result["message"]


async def test_a_run_out_of_time_is_interrupted_on_comfyui(ctx: ToolContext, comfy: Any) -> None:
    services = comfy("generate_image", {"1": {"class_type": "Hang", "inputs": {}}}, timeout_s=1)
    result = await execute(CATALOG["generate_image"], {"prompt": "x"}, ctx)
    assert result["ok"] is False and result["error_type"] == "PROVIDER_TIMEOUT"
    (prompt_id,) = [p for p, body in services.queued.items() if "Hang" in json.dumps(body)]
    assert services.interrupted == [prompt_id] and prompt_id not in services.deleted


async def test_a_cancelled_call_leaves_comfyuis_queue(ctx: ToolContext, comfy: Any) -> None:
    services = comfy("generate_image", {"1": {"class_type": "Wait", "inputs": {}}})
    services.interrupted.clear()
    call = asyncio.ensure_future(execute(CATALOG["generate_image"], {"prompt": "x"}, ctx))
    for _ in range(200):  # until the workflow is queued
        if any("Wait" in json.dumps(body) for body in services.queued.values()):
            break
        await asyncio.sleep(0.02)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    (prompt_id,) = [p for p, body in services.queued.items() if "Wait" in json.dumps(body)]
    assert services.deleted == [prompt_id] and services.interrupted == []


def test_bindings_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.json"
    path.write_text("{}")
    with pytest.raises(ValueError, match="no hosted tool 'make_coffee'"):
        bind_tools(
            [ComfyToolBinding(tool="make_coffee", base_url="http://x", workflow=str(path))], CATALOG
        )
    with pytest.raises(ValueError, match="workflow of 'edit_image'"):
        bind_tools(
            [ComfyToolBinding(tool="edit_image", base_url="http://x", workflow="nope.json")],
            CATALOG,
        )
    binding = {"tool": "edit_image", "base_url": "http://gpu:8188", "workflow": str(path)}
    monkeypatch.setenv("SOGNI_COMFYUI_TOOLS", json.dumps([binding]))
    assert Settings().comfyui_tools[0].tool == "edit_image"


def test_a_model_is_offered_a_bound_tool(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text("{}")
    hosted = {name: CATALOG[name] for name in ("remove_background", "segment_image")}
    session = Session("k", None, None, [], hosted, "auto", MediaContext())  # type: ignore[arg-type]
    assert _offered(session, "auto", ToolServices()) == []
    binding = ComfyToolBinding(tool="remove_background", base_url="http://x", workflow=str(path))
    offered = _offered(session, "auto", ToolServices(bound_tools=bind_tools([binding], CATALOG)))
    assert [d["function"]["name"] for d in offered] == ["remove_background"]
