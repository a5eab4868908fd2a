"""Image tools on the procedural renderer: real files that decode, indices, errors."""

import asyncio
import hashlib

import pytest
from PIL import Image

from sogni_intelligence.tools.base import ToolContext, execute
from sogni_intelligence.tools.image_tools import TOOLS, upscaled_size
from tests.integration.tools.conftest import asset_file, upload_image

BY_NAME = {tool.name: tool for tool in TOOLS}


async def run(ctx: ToolContext, name: str, **arguments: object) -> dict:
    return await execute(BY_NAME[name], arguments, ctx)


@pytest.mark.parametrize(("fmt", "pil_format"), [("png", "PNG"), ("jpg", "JPEG"), ("webp", "WEBP")])
async def test_generate_image_formats_and_sizes(
    ctx: ToolContext, fmt: str, pil_format: str
) -> None:
    result = await run(
        ctx,
        "generate_image",
        prompt="a red fox in a snowy forest",
        width=512,
        height=384,
        outputFormat=fmt,
        seed=3,
    )
    assert result["ok"] and result["success"] and result["media_type"] == "image"
    with Image.open(await asset_file(ctx, result)) as image:
        image.load()
        assert image.format == pil_format and image.size == (512, 384)
    asset = result["output_assets"][0]
    assert asset["width"] == 512 and asset["height"] == 384
    assert "procedural" in asset["metadata"]["renderer"]
    assert result["urls"][0].startswith("http://media.test/v1/media/ast_")
    assert result["backend"] == "procedural-image" and result["model"] == "z-turbo"


async def test_same_seed_same_pixels_and_variations_differ(ctx: ToolContext) -> None:
    one = await run(
        ctx, "generate_image", prompt="lighthouse at night", seed=11, width=256, height=256
    )
    two = await run(
        ctx, "generate_image", prompt="lighthouse at night", seed=11, width=256, height=256
    )
    many = await run(
        ctx,
        "generate_image",
        prompt="lighthouse at night",
        seed=11,
        width=256,
        height=256,
        numberOfVariations=3,
    )
    digest = [
        hashlib.sha256((await asset_file(ctx, r)).read_bytes()).hexdigest() for r in (one, two)
    ]
    assert digest[0] == digest[1]
    shas = {a["asset_id"] for a in many["output_assets"]}
    assert len(shas) == 3
    files = {
        hashlib.sha256((await asset_file(ctx, many, i)).read_bytes()).hexdigest() for i in range(3)
    }
    assert len(files) == 3 and digest[0] in files  # variation 0 uses the same seed
    # indices are 0-based per media type and stable across calls
    assert one["startIndex"] == 0 and two["startIndex"] == 1
    assert many["startIndex"] == 2 and many["indices"] == [2, 3, 4]


async def test_img2img_keeps_some_of_the_source(ctx: ToolContext) -> None:
    await upload_image(ctx, (256, 256), "blue")
    result = await run(
        ctx,
        "generate_image",
        prompt="orange sunset",
        sourceImageIndex=-1,
        starting_image_strength=0.9,
        width=256,
        height=256,
        seed=1,
    )
    with Image.open(await asset_file(ctx, result)) as image:
        r, _g, b = image.convert("RGB").resize((1, 1)).getpixel((0, 0))
    assert b > r  # mostly the blue source


@pytest.mark.parametrize(
    "name", ["edit_image", "apply_style", "refine_result", "restore_photo", "change_angle"]
)
async def test_source_tools_make_a_decodable_image(ctx: ToolContext, name: str) -> None:
    await upload_image(ctx, (320, 240))
    result = await run(ctx, name, prompt="warm vintage look")
    assert result["ok"], result
    with Image.open(await asset_file(ctx, result)) as image:
        image.load()
        assert image.width >= 256


async def test_upscale_image_aligns_edges_and_keeps_aspect(ctx: ToolContext) -> None:
    await upload_image(ctx, (300, 200))
    result = await run(ctx, "upscale_image", scale=2)
    with Image.open(await asset_file(ctx, result)) as image:
        assert image.width % 8 == 0 and image.height % 8 == 0 and min(image.size) >= 512
        assert abs(image.width / image.height - 1.5) < 0.03
    target = await run(ctx, "upscale_image", sourceImageIndex=-1, targetLongestEdge=1000)
    assert (
        target["output_assets"][0]["width"] == 1000 or target["output_assets"][0]["height"] == 1000
    )


def test_upscaled_size_rules() -> None:
    assert upscaled_size(1024, 768, 2, None) == (2048, 1536)
    assert upscaled_size(100, 100, 2, None) == (512, 512)
    width, height = upscaled_size(6000, 3000, 2, None)
    assert (width, height) == (12000, 6000)


async def test_errors_are_tool_results(ctx: ToolContext) -> None:
    unknown = await run(ctx, "generate_image", prompt="x", model="dall-e-9")
    assert unknown["ok"] is False and unknown["error_type"] == "PARAMETER_INVALID"
    assert "z-turbo" in unknown["message"]
    bad = await run(ctx, "generate_image", prompt="x", numberOfVariations=40)
    assert bad["error_type"] == "PARAMETER_INVALID" and "numberOfVariations" in bad["message"]
    extra = await run(ctx, "generate_image", prompt="x", bogus=1)
    assert extra["error_type"] == "PARAMETER_INVALID"
    missing = await run(ctx, "upscale_image")
    assert missing["error_type"] == "ASSET_NOT_FOUND"
    out_of_range = await run(ctx, "edit_image", prompt="x", sourceImageIndex=-3)
    assert out_of_range["error_type"] == "ASSET_NOT_FOUND"


async def test_cancel_stops_a_long_batch(ctx: ToolContext) -> None:
    task = asyncio.create_task(
        run(ctx, "generate_image", prompt="a city", numberOfVariations=16, width=2048, height=2048)
    )
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 3)
    assert len(ctx.media.generated["image"]) == 0
