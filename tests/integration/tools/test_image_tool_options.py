"""What the optional image arguments do to the decoded pictures on the procedural renderer:
edit masks (data URI, our own media URL, a refused URL), personas, transparent backgrounds,
output compression and negative prompts."""

import base64
import io

from PIL import Image, ImageChops

from sogni_intelligence.tools.base import ToolContext
from tests.integration.tools.conftest import asset_file, upload_image
from tests.integration.tools.image_helpers import run, warned


def _mask_png(size: tuple[int, int]) -> bytes:
    """Left half transparent (may change), right half opaque (keeps the source)."""
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, size[0] // 2, size[1]))
    out = io.BytesIO()
    mask.save(out, "PNG")
    return out.getvalue()


async def _open(ctx: ToolContext, result: dict, index: int = 0) -> Image.Image:
    with Image.open(await asset_file(ctx, result, index)) as image:
        image.load()
        return image


def _changed(a: Image.Image, b: Image.Image, box: tuple[int, int, int, int]) -> bool:
    return (
        ImageChops.difference(a.convert("RGB").crop(box), b.convert("RGB").crop(box)).getbbox()
        is not None
    )


async def test_a_mask_keeps_its_opaque_half_of_the_source(ctx: ToolContext) -> None:
    record = await upload_image(ctx, (320, 240))
    source = Image.open(await ctx.store.local_path(record)).convert("RGB")
    uri = "data:image/png;base64," + base64.b64encode(_mask_png((320, 240))).decode()
    result = await run(
        ctx, "edit_image", prompt="a neon sign", sourceImageIndex=-1, mask_image_url=uri, seed=2
    )
    assert result["ok"], result
    edited = await _open(ctx, result)
    assert edited.size == (320, 240)
    assert not _changed(edited, source, (160, 0, 320, 240))  # opaque: the source, pixel for pixel
    assert _changed(edited, source, (0, 0, 160, 240))  # transparent: edited


async def test_a_mask_from_our_own_media_url_goes_through_the_guarded_fetch(
    ctx: ToolContext,
) -> None:
    record = await upload_image(ctx, (320, 240))
    source = Image.open(await ctx.store.local_path(record)).convert("RGB")
    mask = await ctx.store.put_bytes(ctx.owner, _mask_png((160, 120)))  # resized to the output
    url = ctx.store.public(mask)["url"]
    result = await run(ctx, "edit_image", prompt="snow", sourceImageIndex=-1, mask_image_url=url)
    edited = await _open(ctx, result)
    assert not _changed(edited, source, (161, 0, 320, 240))
    assert _changed(edited, source, (0, 0, 159, 240))


async def test_unusable_masks_are_parameter_errors(ctx: ToolContext) -> None:
    await upload_image(ctx, (320, 240))
    private = await run(ctx, "edit_image", prompt="x", mask_image_url="http://127.0.0.1:9/mask.png")
    assert private["error_type"] == "PARAMETER_INVALID"
    assert private["message"].startswith("mask_image_url:")
    opaque = io.BytesIO()
    Image.new("RGB", (32, 32), "white").save(opaque, "PNG")
    no_alpha = "data:image/png;base64," + base64.b64encode(opaque.getvalue()).decode()
    flat = await run(ctx, "edit_image", prompt="x", mask_image_url=no_alpha)
    assert flat["error_type"] == "PARAMETER_INVALID" and "alpha" in flat["message"]
    garbage = await run(ctx, "edit_image", prompt="x", mask_image_url="data:image/png;base64,@@")
    assert garbage["error_type"] == "PARAMETER_INVALID"


async def test_persona_name_picks_the_labelled_image(ctx: ToolContext) -> None:
    await upload_image(ctx, (320, 240), "orange")
    alice = await upload_image(ctx, (300, 300), "blue")
    ctx.media.labels[alice.id] = "Alice  Smith"
    result = await run(
        ctx, "edit_image", prompt="a portrait", personaName="alice smith", strength=0
    )
    assert result["ok"] and "warnings" not in result, result
    edited = await _open(ctx, result)
    assert edited.size == (300, 300)  # the persona's photo, not the first upload
    r, _g, b = edited.convert("RGB").resize((1, 1)).getpixel((0, 0))
    assert b > r


async def test_transparent_background_on_png_and_refused_on_jpeg(ctx: ToolContext) -> None:
    png = await run(
        ctx,
        "generate_image",
        prompt="floating bubbles",
        gptImageBackground="transparent",
        width=256,
        height=256,
        seed=5,
    )
    image = await _open(ctx, png)
    assert image.mode == "RGBA"
    low, high = image.getchannel("A").getextrema()
    assert low == 0 and high > 0 and "warnings" not in png
    jpeg = await run(
        ctx,
        "generate_image",
        prompt="floating bubbles",
        gptImageBackground="transparent",
        outputFormat="jpg",
        width=256,
        height=256,
    )
    assert (await _open(ctx, jpeg)).mode == "RGB" and warned(jpeg, "gptImageBackground")


async def test_output_compression_sets_the_jpeg_quality(ctx: ToolContext) -> None:
    sizes = {}
    for compression in (5, 95):
        result = await run(
            ctx,
            "generate_image",
            prompt="a busy market street",
            outputFormat="jpg",
            gptImageOutputCompression=compression,
            width=512,
            height=512,
            seed=9,
        )
        sizes[compression] = (await asset_file(ctx, result)).stat().st_size
    assert sizes[5] * 2 < sizes[95]
    png = await run(ctx, "generate_image", prompt="x", gptImageOutputCompression=50, width=256)
    assert warned(png, "gptImageOutputCompression")


async def test_negative_prompt_words_leave_the_palette(ctx: ToolContext) -> None:
    async def red_share(**extra: object) -> float:
        result = await run(
            ctx, "generate_image", prompt="red and blue", width=256, height=256, seed=3, **extra
        )
        r, g, b = (await _open(ctx, result)).convert("RGB").resize((1, 1)).getpixel((0, 0))
        return r / (r + g + b)

    assert await red_share(negativePrompt="red") < await red_share()
