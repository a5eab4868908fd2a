"""Image tools on the procedural renderer, called with the manifest's argument spellings: real
files that decode, their count, sizes and shapes, indices, warnings and errors."""

import asyncio

import pytest
from PIL import Image

from sogni_intelligence.tools.base import ToolContext
from tests.integration.tools.conftest import asset_file, upload_image
from tests.integration.tools.image_helpers import digests, run, sizes, warned


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
    assert "warnings" not in result


async def test_generate_image_with_the_manifest_arguments(ctx: ToolContext) -> None:
    arguments = {
        "prompt": "a black cat {in a sunlit window|on a bookshelf|by a fireplace}",
        "model": "dark-beast-krea2",
        "numberOfVariations": 3,
        "aspectRatio": "16:9",
        "width": 512,
        "seed": 7,
        "negativePrompt": "no text",
        "guidance": 4.5,
        "gptImageQuality": "high",
        "outputFormat": "jpeg",
        "loras": ["krea2-detail-enhancer", "krea2-amateur"],
        "loraStrengths": [3, -2],
    }
    result = await run(ctx, "generate_image", **arguments)
    assert result["ok"], result
    assert result["indices"] == [0, 1, 2] and result["startIndex"] == 0
    assert await sizes(ctx, result) == [(512, 288)] * 3  # width given, height from 16:9
    for index in range(3):
        with Image.open(await asset_file(ctx, result, index)) as image:
            assert image.format == "JPEG"
    prompts = [asset["metadata"]["prompt"] for asset in result["output_assets"]]
    assert prompts == [
        "a black cat in a sunlit window",
        "a black cat on a bookshelf",
        "a black cat by a fireplace",
    ]
    assert [asset["metadata"]["seed"] for asset in result["output_assets"]] == [7, 8, 9]
    assert warned(result, "gptImageQuality", "loras", "loraStrengths", "guidance")
    assert not warned(result, "negativePrompt") and not warned(result, "seed")
    # the same seed gives the same bytes, variation by variation
    again = await run(ctx, "generate_image", **arguments)
    assert await digests(ctx, again) == await digests(ctx, result)
    assert len(set(await digests(ctx, result))) == 3


async def test_generate_image_sizes_from_shape_and_one_side(ctx: ToolContext) -> None:
    pixels = await run(ctx, "generate_image", prompt="a harbour", aspectRatio="1280x720", seed=1)
    portrait = await run(ctx, "generate_image", prompt="a harbour", aspectRatio="9:16", seed=1)
    one_side = await run(ctx, "generate_image", prompt="a harbour", height=640, seed=1)
    both = await run(
        ctx, "generate_image", prompt="a harbour", width=640, height=480, aspectRatio="1:1"
    )
    assert await sizes(ctx, pixels) == [(1280, 720)]
    assert await sizes(ctx, portrait) == [(576, 1024)]
    assert await sizes(ctx, one_side) == [(640, 640)]
    assert await sizes(ctx, both) == [(640, 480)] and warned(both, "aspectRatio")
    bad = await run(ctx, "generate_image", prompt="x", aspectRatio="wide please")
    assert bad["error_type"] == "PARAMETER_INVALID" and "aspectRatio" in bad["message"]


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
    digest = (await digests(ctx, one)) + (await digests(ctx, two))
    assert digest[0] == digest[1]
    files = set(await digests(ctx, many))
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
    # strength alone starts from the latest image and keeps its shape
    await upload_image(ctx, (400, 200), "blue")
    shaped = await run(
        ctx, "generate_image", prompt="x", sourceImageIndex=-2, starting_image_strength=0.75
    )
    assert await sizes(ctx, shaped) == [(1024, 512)]


async def test_edit_image_with_the_manifest_arguments(ctx: ToolContext) -> None:
    await upload_image(ctx, (320, 240), "orange")
    result = await run(
        ctx,
        "edit_image",
        prompt="make the {sky stormy|light golden}",
        model="krea-identity-edit",
        sourceImageIndex=-1,
        numberOfVariations=2,
        aspectRatio="1:1",
        outputFormat="webp",
        gptImageQuality="medium",
        gptImageBackground="transparent",
        gptImageOutputCompression=60,
        personaName="Nobody",
        loras=["krea2-age"],
        loraStrengths=[1.5],
    )
    assert result["ok"], result
    assert result["indices"] == [0, 1]
    assert await sizes(ctx, result) == [(320, 320)] * 2  # the source's longest edge, squared
    assert len(set(await digests(ctx, result))) == 2
    assert warned(result, "personaName", "gptImageQuality", "gptImageBackground", "loras")
    assert not warned(result, "gptImageOutputCompression")  # WebP takes it
    width_only = await run(ctx, "edit_image", prompt="x", sourceImageIndex=-1, width=640)
    assert await sizes(ctx, width_only) == [(640, 480)]  # the source's shape kept


async def test_apply_style_scales_and_reshapes(ctx: ToolContext) -> None:
    await upload_image(ctx, (640, 480))
    result = await run(
        ctx, "apply_style", prompt="warm vintage film look", scale=2, aspectRatio="16:9"
    )
    assert result["ok"], result
    assert await sizes(ctx, result) == [(1280, 720)]
    same = await run(ctx, "apply_style", prompt="warm vintage film look", sourceImageIndex=-1)
    assert await sizes(ctx, same) == [(640, 480)]
    half = await run(ctx, "apply_style", prompt="x", sourceImageIndex=-1, scale=1.5)
    assert await sizes(ctx, half) == [(960, 720)]


async def test_restore_photo_variations_quality_scale_and_shape(ctx: ToolContext) -> None:
    # a grainy picture as the old photo, so denoising and sharpening have work to do
    photo = await run(ctx, "generate_image", prompt="a street at dusk", width=640, height=480)
    arguments = {
        "prompt": "Remove scratches and restore natural colour. Preserve all unmentioned details.",
        "sourceImageIndex": 0,
        "scale": 1.5,
        "aspectRatio": "4:5",
        "seed": 5,
    }
    result = await run(ctx, "restore_photo", numberOfVariations=2, quality="hq", **arguments)
    assert photo["ok"] and result["ok"], result
    assert result["indices"] == [1, 2]
    assert await sizes(ctx, result) == [(768, 960)] * 2  # 4:5 of the 640 px edge, times 1.5
    assert len(set(await digests(ctx, result))) == 2
    assert "warnings" not in result
    fast = await run(ctx, "restore_photo", quality="fast", **arguments)
    assert (await digests(ctx, fast))[0] != (await digests(ctx, result))[0]


async def test_refine_result_works_on_the_latest_result(ctx: ToolContext) -> None:
    first = await run(ctx, "generate_image", prompt="a desert road", width=512, height=512)
    assert first["ok"]
    result = await run(
        ctx,
        "refine_result",
        prompt="Warmer light. Preserve all unmentioned details.",
        numberOfVariations=3,
        scale=2,
        aspectRatio="1280x720",
    )
    assert result["ok"], result
    assert result["indices"] == [1, 2, 3]
    assert await sizes(ctx, result) == [(1280, 720)] * 3
    assert warned(result, "scale")  # exact pixels win over the scale
    small = await run(ctx, "refine_result", prompt="x", sourceImageIndex=0, scale=1)
    assert await sizes(ctx, small) == [(512, 512)]


async def test_small_sources_come_back_at_least_480_px(ctx: ToolContext) -> None:
    await upload_image(ctx, (320, 240))
    for name in ("apply_style", "refine_result", "restore_photo"):
        result = await run(ctx, name, prompt="cleaner", sourceImageIndex=-1)
        assert await sizes(ctx, result) == [(640, 480)], name


async def test_change_angle_with_the_manifest_arguments(ctx: ToolContext) -> None:
    await upload_image(ctx, (320, 240))
    result = await run(
        ctx,
        "change_angle",
        description="left side view high-angle shot close-up",
        sourceImageIndex=-1,
        loraStrength=1.0,
        aspectRatio="1:1",
    )
    assert result["ok"], result
    assert await sizes(ctx, result) == [(320, 320)]
    meta = result["output_assets"][0]["metadata"]
    assert meta["horizontal_angle"] == -90 and meta["vertical_angle"] == 0.8
    assert meta["zoom"] == 1.5
    assert "warnings" not in result
    odd = await run(ctx, "change_angle", description="banana view wide shot", sourceImageIndex=-1)
    assert await sizes(ctx, odd) == [(320, 240)]
    assert warned(odd, "description", "banana view")


async def test_change_angle_strength_sets_how_far_the_view_moves(ctx: ToolContext) -> None:
    source = await upload_image(ctx, (320, 240))
    with Image.open(await ctx.store.local_path(source)) as image:
        original = image.convert("RGB")

    async def distance(strength: float) -> float:
        result = await run(
            ctx,
            "change_angle",
            description="front-right quarter view elevated shot close-up",
            sourceImageIndex=-1,
            loraStrength=strength,
        )
        with Image.open(await asset_file(ctx, result)) as image:
            moved = image.convert("RGB")
        pairs = zip(moved.get_flattened_data(), original.get_flattened_data(), strict=True)
        return sum(abs(a[0] - b[0]) + abs(a[2] - b[2]) for a, b in pairs) / (320 * 240)

    assert await distance(0.1) < await distance(1.0)


async def test_upscale_image_aligns_edges_and_keeps_aspect(ctx: ToolContext) -> None:
    await upload_image(ctx, (300, 200))
    result = await run(ctx, "upscale_image", sourceImageIndex=-1, scale=3)
    [(width, height)] = await sizes(ctx, result)
    assert width % 8 == 0 and height % 8 == 0 and min(width, height) >= 512
    assert abs(width / height - 1.5) < 0.03
    target = await run(ctx, "upscale_image", sourceImageIndex=-1, targetLongestEdge=1000)
    assert await sizes(ctx, target) == [(1000, 664)]


async def test_upscale_image_reports_the_smallest_target_instead_of_stretching(
    ctx: ToolContext,
) -> None:
    await upload_image(ctx, (200, 150))
    result = await run(ctx, "upscale_image", sourceImageIndex=-1, scale=2)
    assert result["error_type"] == "PARAMETER_INVALID"
    assert "targetLongestEdge=688" in result["message"]
    fixed = await run(ctx, "upscale_image", sourceImageIndex=-1, targetLongestEdge=688)
    assert await sizes(ctx, fixed) == [(688, 512)]


async def test_errors_are_tool_results(ctx: ToolContext) -> None:
    unknown = await run(ctx, "generate_image", prompt="x", model="dall-e-9")
    assert unknown["ok"] is False and unknown["error_type"] == "PARAMETER_INVALID"
    assert "z-turbo" in unknown["message"]
    bad = await run(ctx, "generate_image", prompt="x", numberOfVariations=40)
    assert bad["error_type"] == "PARAMETER_INVALID" and "numberOfVariations" in bad["message"]
    extra = await run(ctx, "generate_image", prompt="x", bogus=1)
    assert extra["error_type"] == "PARAMETER_INVALID"
    unaligned = await run(ctx, "generate_image", prompt="x", loras=["a"], loraStrengths=[1, 2])
    assert (
        unaligned["error_type"] == "PARAMETER_INVALID" and "loraStrengths" in unaligned["message"]
    )
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
