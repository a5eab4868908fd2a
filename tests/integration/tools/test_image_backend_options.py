"""Optional image arguments reaching the backends that can use them, and named in warnings by
those that cannot: an OpenAI-style image API (a small app standing in for the outside service,
reached through httpx's ASGI transport) and the local diffusers pipeline."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sogni_intelligence.config import ImageBackendConfig
from sogni_intelligence.media.remote_image import OpenAIImageBackend, build_image_backends
from sogni_intelligence.tools.base import ToolContext
from tests.integration.tools.conftest import asset_file, upload_image
from tests.integration.tools.image_helpers import run, sizes, warned


def _png(size: tuple[int, int], mode: str = "RGB", colour: Any = "green") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, colour).save(out, "PNG")
    return out.getvalue()


class ImageApi:
    """Records what each call sent; answers `n` green PNGs of the asked size."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.app = Starlette(
            routes=[
                Route("/v1/images/generations", self.generations, methods=["POST"]),
                Route("/v1/images/edits", self.edits, methods=["POST"]),
            ]
        )

    def _answer(self, fields: dict[str, Any]) -> JSONResponse:
        width, height = (int(v) for v in str(fields["size"]).split("x"))
        image = base64.b64encode(_png((width, height))).decode()
        return JSONResponse({"data": [{"b64_json": image}] * int(fields["n"])})

    async def generations(self, request: Request) -> JSONResponse:
        fields = await request.json()
        self.calls.append({"path": "generations", **fields})
        return self._answer(fields)

    async def edits(self, request: Request) -> JSONResponse:
        form = await request.form()
        fields: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
        for name in ("image", "mask"):
            if name in form:
                fields[name] = await form[name].read()  # type: ignore[union-attr]
        self.calls.append({"path": "edits", **fields})
        return self._answer(fields)


@pytest.fixture
def api(ctx: ToolContext) -> ImageApi:
    fake = ImageApi()
    config = ImageBackendConfig(
        name="gpt-box", kind="openai", base_url="http://images.test/v1", aliases=["gpt-image-2"]
    )
    backend = OpenAIImageBackend(config)
    backend._client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake.app), base_url="http://images.test/v1"
    )
    ctx.services.image_backends = {"gpt-box": backend}
    return fake


async def test_openai_edit_gets_the_mask_and_gpt_image_options(
    ctx: ToolContext, api: ImageApi
) -> None:
    await upload_image(ctx, (320, 240))
    await upload_image(ctx, (100, 100))  # a further context image the API cannot take
    mask = _png((320, 240), "RGBA", (0, 0, 0, 0))
    result = await run(
        ctx,
        "edit_image",
        prompt="add a red balloon",
        model="gpt-image-2",
        sourceImageIndex=-1,
        mask_image_url="data:image/png;base64," + base64.b64encode(mask).decode(),
        gptImageQuality="high",
        gptImageBackground="transparent",
        gptImageOutputCompression=40,
        outputFormat="webp",
        negativePrompt="no text",
        seed=3,
        loras=["krea2-age"],
    )
    assert result["ok"] and result["backend"] == "gpt-box", result
    [call] = api.calls
    assert call["path"] == "edits" and call["prompt"] == "add a red balloon"
    assert call["size"] == "320x240" and call["n"] == "1"
    assert (call["quality"], call["background"]) == ("high", "transparent")
    assert (call["output_compression"], call["output_format"]) == ("40", "webp")
    with Image.open(io.BytesIO(call["mask"])) as sent:
        assert sent.size == (320, 240) and sent.getchannel("A").getextrema() == (0, 0)
    with Image.open(await asset_file(ctx, result)) as image:
        assert image.format == "WEBP"  # the PNG answer re-encoded as asked
    assert warned(result, "negativePrompt", "seed", "loras", "gpt-box", "other uploads")
    assert not warned(result, "gptImage", "mask_image_url")


async def test_openai_generate_sends_one_call_per_dynamic_prompt_option(
    ctx: ToolContext, api: ImageApi
) -> None:
    result = await run(
        ctx,
        "generate_image",
        prompt="a {lighthouse|windmill} at dusk",
        model="gpt-image-2",
        numberOfVariations=2,
        aspectRatio="3:2",
        guidance=7,
    )
    assert result["indices"] == [0, 1]
    assert [call["prompt"] for call in api.calls] == [
        "a lighthouse at dusk",
        "a windmill at dusk",
    ]
    assert {call["size"] for call in api.calls} == {"1024x680"} and "quality" not in api.calls[0]
    assert await sizes(ctx, result) == [(1024, 680)] * 2
    assert warned(result, "guidance")
    same = await run(
        ctx, "generate_image", prompt="a pier", model="gpt-image-2", numberOfVariations=3
    )
    assert api.calls[-1]["n"] == 3 and len(same["output_assets"]) == 3


# --- the local diffusers pipeline ------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The random-weight pipeline of the diffusers backend tests, one intra-op thread."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from tests.integration.tools.test_diffusers_backend import build_tiny_pipeline

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield build_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd"))
    torch.set_num_threads(threads)


def _diffusers(ctx: ToolContext, model_dir: Path) -> Any:
    config = ImageBackendConfig(
        name="local-sd", kind="diffusers", model_path=str(model_dir), aliases=["tiny"], steps=10
    )
    ctx.services.image_backends = build_image_backends([config])
    return ctx.services.image_backends["local-sd"]


async def test_diffusers_takes_strength_and_guidance(ctx: ToolContext, model_dir: Path) -> None:
    backend = _diffusers(ctx, model_dir)
    await upload_image(ctx, (256, 256))
    edit = await run(ctx, "edit_image", prompt="night", model="tiny", strength=0.3, seed=1)
    assert edit["ok"] and "warnings" not in edit, edit
    assert backend.steps_done == 3  # img2img runs strength x steps
    img2img = await run(
        ctx,
        "generate_image",
        prompt="night",
        model="tiny",
        sourceImageIndex=-1,
        starting_image_strength=0.8,  # keeps 80 % of the source: 2 of 10 steps
        width=256,
        height=256,
        seed=1,
    )
    assert backend.steps_done == 5 and "warnings" not in img2img
    pictures = []
    for guidance in (1.0, 9.0):
        result = await run(
            ctx,
            "generate_image",
            prompt="a red fox",
            model="tiny",
            width=256,
            height=256,
            seed=4,
            guidance=guidance,
        )
        assert "warnings" not in result
        pictures.append((await asset_file(ctx, result)).read_bytes())
    assert pictures[0] != pictures[1]
