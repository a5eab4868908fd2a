"""Remote image backends over real HTTP (and a websocket) against small fake servers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from sogni_intelligence.config import ImageBackendConfig
from sogni_intelligence.media.comfyui import fill_workflow
from sogni_intelligence.media.remote_image import build_image_backends
from sogni_intelligence.tools.base import ToolContext, execute
from sogni_intelligence.tools.image_tools import TOOLS
from tests.integration.tools.conftest import asset_file, upload_image
from tests.integration.tools.fake_image_services import FakeImageServices, serve

GENERATE = next(t for t in TOOLS if t.name == "generate_image")
EDIT = next(t for t in TOOLS if t.name == "edit_image")


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeImageServices, str]]:
    services = FakeImageServices()
    with serve(services) as url:
        yield services, url


def _attach(ctx: ToolContext, *configs: ImageBackendConfig) -> None:
    ctx.services.image_backends = build_image_backends(list(configs))


async def test_openai_backend_generates_through_an_alias(ctx: ToolContext, fake: tuple) -> None:
    services, url = fake
    _attach(
        ctx,
        ImageBackendConfig(
            name="gpu-box",
            kind="openai",
            base_url=f"{url}/v1",
            api_key="secret",
            model="sdxl-turbo",
            aliases=["gpt-image-2"],
        ),
    )
    result = await execute(
        GENERATE,
        {
            "prompt": "a garden",
            "model": "gpt-image-2",
            "width": 512,
            "height": 256,
            "numberOfVariations": 2,
        },
        ctx,
    )
    assert result["ok"], result
    assert result["backend"] == "gpu-box" and result["indices"] == [0, 1]
    with Image.open(await asset_file(ctx, result, 1)) as image:
        assert image.size == (512, 256) and image.convert("RGB").getpixel((0, 0)) == (0, 128, 0)
    sent = services.requests[-1]
    assert sent["body"]["model"] == "sdxl-turbo" and sent["body"]["n"] == 2
    assert sent["auth"] == "Bearer secret"
    # ids without a configured backend still run on the built-in renderer
    local = await execute(GENERATE, {"prompt": "a garden", "width": 256, "height": 256}, ctx)
    assert local["backend"] == "procedural-image"


async def test_openai_backend_edit_sends_the_source(ctx: ToolContext, fake: tuple) -> None:
    services, url = fake
    _attach(
        ctx,
        ImageBackendConfig(name="gpu-box", kind="openai", base_url=f"{url}/v1", aliases=["qwen"]),
    )
    await upload_image(ctx, (200, 100))
    result = await execute(EDIT, {"prompt": "make it purple", "model": "qwen"}, ctx)
    assert result["ok"], result
    assert services.requests[-1]["path"] == "edits" and services.requests[-1]["image_bytes"] > 100


async def test_openai_backend_failure_is_a_retryable_tool_error(
    ctx: ToolContext, fake: tuple
) -> None:
    _, url = fake
    _attach(
        ctx,
        ImageBackendConfig(
            name="gpu-box", kind="openai", base_url=f"{url}/v1", aliases=["gpt-image-2"]
        ),
    )
    result = await execute(GENERATE, {"prompt": "fail", "model": "gpt-image-2"}, ctx)
    assert (
        result["ok"] is False
        and result["error_type"] == "GPU_WORKER_FAILED"
        and result["retryable"]
    )
    _attach(
        ctx,
        ImageBackendConfig(
            name="down", kind="openai", base_url="http://127.0.0.1:9/v1", aliases=["gpt-image-2"]
        ),
    )
    result = await execute(GENERATE, {"prompt": "x", "model": "gpt-image-2"}, ctx)
    assert result["ok"] is False and result["error_type"] == "GPU_WORKER_FAILED"


async def test_comfyui_backend_queues_follows_progress_and_downloads(
    ctx: ToolContext, fake: tuple, tmp_path: Path, progress_log: list
) -> None:
    services, url = fake
    workflow = {
        "3": {
            "inputs": {
                "seed": "{{seed}}",
                "text": "photo of {{prompt}}",
                "width": "{{width}}",
                "height": "{{height}}",
            }
        }
    }
    path = tmp_path / "workflow.json"
    path.write_text(json.dumps(workflow))
    _attach(
        ctx,
        ImageBackendConfig(
            name="comfy", kind="comfyui", base_url=url, workflow=str(path), aliases=["flux-3-klein"]
        ),
    )
    result = await execute(
        GENERATE,
        {
            "prompt": "a fox",
            "model": "flux-3-klein",
            "seed": 5,
            "width": 512,
            "height": 512,
            "numberOfVariations": 2,
        },
        ctx,
    )
    assert result["ok"], result
    assert result["backend"] == "comfy" and len(result["output_assets"]) == 2
    with Image.open(await asset_file(ctx, result)) as image:
        assert image.size == (80, 60)
    sent = [q["prompt"]["3"]["inputs"] for q in services.queued.values()][-2:]
    assert sent[0] == {"seed": 5, "text": "photo of a fox", "width": 512, "height": 512}
    assert sent[1]["seed"] == 6
    assert {0.25, 0.5, 0.75} <= {fraction for fraction, _ in progress_log}


def test_fill_workflow_keeps_types() -> None:
    filled = fill_workflow({"a": "{{n}}", "b": ["x {{n}}"], "c": 3}, {"n": 7})
    assert filled == {"a": 7, "b": ["x 7"], "c": 3}
