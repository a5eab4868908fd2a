"""Image tools: generate, edit, restyle, restore, refine, change angle and upscale.

All of them run on the procedural renderer by default (see `media/image.py`); the public
model ids resolve to it through the alias table, and the artifacts say what really ran.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Literal

from PIL import Image
from pydantic import Field

from sogni_intelligence.media import image as render
from sogni_intelligence.media.models import (
    DEFAULT_IMAGE_MODEL,
    IMAGE_MODELS,
    PROCEDURAL_IMAGE,
    resolve_model,
)
from sogni_intelligence.media.remote_image import ImageRequest, RemoteImageBackend
from sogni_intelligence.media.store import AssetRecord, image_bytes
from sogni_intelligence.tools.base import (
    Tool,
    ToolArgs,
    ToolContext,
    ToolError,
    ToolOutput,
)

OutputFormat = Literal["png", "jpg", "jpeg", "webp"]
MAX_SIDE = 2048
_RATIOS = {
    "1:1": (1, 1),
    "4:3": (4, 3),
    "3:4": (3, 4),
    "16:9": (16, 9),
    "9:16": (9, 16),
    "3:2": (3, 2),
    "2:3": (2, 3),
    "21:9": (21, 9),
}


class _ImageArgs(ToolArgs):
    prompt: str = Field(min_length=1, max_length=8000, description="What the picture shows.")
    model: str = Field(DEFAULT_IMAGE_MODEL, description="Image model id; see the catalog.")
    width: int | None = Field(None, ge=256, le=MAX_SIDE, description="Output width in px.")
    height: int | None = Field(None, ge=256, le=MAX_SIDE, description="Output height in px.")
    aspectRatio: str | None = Field(
        None, description="e.g. 16:9; used when width/height are absent."
    )
    numberOfVariations: int = Field(1, ge=1, le=16, description="How many images to make.")
    seed: int = Field(-1, ge=-1, le=2**32 - 1, description="-1 picks a random seed.")
    negativePrompt: str | None = Field(None, description="What to keep out of the picture.")
    outputFormat: OutputFormat = Field("png", description="File format of the results.")

    def size(self, fallback: tuple[int, int] = (1024, 1024)) -> tuple[int, int]:
        if self.width and self.height:
            return _even8(self.width), _even8(self.height)
        if self.aspectRatio in _RATIOS:
            rw, rh = _RATIOS[self.aspectRatio]
            long_side = max(self.width or 0, self.height or 0) or 1024
            if rw >= rh:
                return _even8(long_side), _even8(long_side * rh / rw)
            return _even8(long_side * rw / rh), _even8(long_side)
        if self.aspectRatio is not None:
            raise ToolError("PARAMETER_INVALID", f"aspectRatio must be one of {', '.join(_RATIOS)}")
        return self.width or fallback[0], self.height or fallback[1]

    def seeds(self) -> list[int]:
        base = self.seed if self.seed >= 0 else secrets.randbelow(2**31)
        return [(base + i) % 2**32 for i in range(self.numberOfVariations)]


def _even8(value: float) -> int:
    return max(256, min(MAX_SIDE, round(value / 8) * 8))


class GenerateImageArgs(_ImageArgs):
    sourceImageIndex: int | None = Field(None, description="Start from this image (img2img).")
    starting_image_strength: float = Field(
        0.5, ge=0, le=1, description="How much of the source image to keep (img2img)."
    )
    guidance: float | None = Field(None, ge=0, le=30, description="Prompt adherence, if supported.")


class EditImageArgs(_ImageArgs):
    sourceImageIndex: int | None = Field(None, description="The image to edit.")
    referenceImageIndices: list[int] | None = Field(
        None, max_length=16, description="Further reference images (blended in)."
    )
    strength: float = Field(0.6, ge=0, le=1, description="How strongly the edit applies.")


class RestyleArgs(ToolArgs):
    prompt: str = Field(min_length=1, max_length=8000, description="The style to apply.")
    sourceImageIndex: int | None = Field(None, description="The image to restyle.")
    model: str = Field(DEFAULT_IMAGE_MODEL, description="Image model id.")
    strength: float = Field(0.65, ge=0, le=1, description="How strongly the style applies.")
    seed: int = Field(-1, ge=-1, le=2**32 - 1)
    outputFormat: OutputFormat = "png"


class RestorePhotoArgs(ToolArgs):
    prompt: str | None = Field(None, description="Optional notes on what to fix.")
    sourceImageIndex: int | None = Field(None, description="The photo; default the first upload.")
    model: str = Field(DEFAULT_IMAGE_MODEL, description="Image model id.")
    outputFormat: OutputFormat = "png"


class ChangeAngleArgs(ToolArgs):
    prompt: str | None = Field(None, description="The wanted viewpoint, in words.")
    sourceImageIndex: int | None = Field(None, description="The image to re-frame.")
    horizontalAngle: float = Field(30, ge=-90, le=90, description="Degrees to turn; + is right.")
    verticalAngle: float = Field(0, ge=-1, le=1, description="Tilt: -1 from below, +1 from above.")
    model: str = Field(DEFAULT_IMAGE_MODEL, description="Image model id.")
    outputFormat: OutputFormat = "png"


class UpscaleImageArgs(ToolArgs):
    sourceImageIndex: int | None = Field(None, description="The image to enlarge.")
    scale: Literal[2, 3, 4] = Field(2, description="Enlargement factor.")
    targetLongestEdge: int | None = Field(
        None, ge=512, le=15360, description="Exact longest edge in px (wins over scale)."
    )


async def _store_images(
    ctx: ToolContext, images: list[Image.Image], fmt: str, tool: str, meta: dict
) -> list[AssetRecord]:
    records = []
    for i, image in enumerate(images):
        data = await asyncio.to_thread(image_bytes, image, fmt)
        records.append(
            await ctx.store.put_bytes(
                ctx.owner,
                data,
                tool=tool,
                backend=PROCEDURAL_IMAGE,
                meta={**meta, "renderer": render.RENDERER_NOTE, "variation": i},
            )
        )
        ctx.progress((i + 1) / len(images), f"image {i + 1} of {len(images)}")
    return records


async def _open(ctx: ToolContext, index: int | None, argument: str) -> Image.Image:
    return await _open_record(ctx, ctx.media.resolve("image", index, argument))


async def _open_record(ctx: ToolContext, record: AssetRecord) -> Image.Image:
    path = ctx.store.path_of(record)

    def load() -> Image.Image:
        with Image.open(path) as image:
            return image.convert("RGB")

    return await asyncio.to_thread(load)


def _image_backend(ctx: ToolContext, model: str) -> RemoteImageBackend | None:
    """The configured remote backend behind `model`, or None for the built-in renderer."""
    remotes: dict[str, RemoteImageBackend] = ctx.services.get("image_backends", {})
    table: dict[str, str] = dict(IMAGE_MODELS)
    for backend in remotes.values():
        table.update(dict.fromkeys(backend.aliases, backend.name))
    return remotes.get(resolve_model(table, model, "image"))


async def _remote_images(
    ctx: ToolContext, backend: RemoteImageBackend, request: ImageRequest, tool: str, meta: dict
) -> list[AssetRecord]:
    images = await backend.generate(request, ctx.progress)
    return [
        await ctx.store.put_bytes(
            ctx.owner, data, tool=tool, backend=backend.name, meta={**meta, "variation": i}
        )
        for i, data in enumerate(images)
    ]


async def generate_image(args: GenerateImageArgs, ctx: ToolContext) -> ToolOutput:
    remote = _image_backend(ctx, args.model)
    width, height = args.size()
    source = None
    if args.sourceImageIndex is not None:
        source = await _open(ctx, args.sourceImageIndex, "sourceImageIndex")
    meta = {"prompt": args.prompt, "seeds": args.seeds(), "requested_model": args.model}
    if args.negativePrompt:
        meta["negative_prompt"] = args.negativePrompt
    if remote is not None:
        request = ImageRequest(
            prompt=args.prompt,
            width=width,
            height=height,
            seed=args.seeds()[0],
            count=args.numberOfVariations,
            negative_prompt=args.negativePrompt,
            source_png=None if source is None else image_bytes(source, "png"),
        )
        assets = await _remote_images(ctx, remote, request, "generate_image", meta)
        return ToolOutput(assets, model=args.model, backend=remote.name)
    images = []
    for seed in args.seeds():
        picture = await asyncio.to_thread(
            render.render_procedural, args.prompt, seed, width, height
        )
        if source is not None:
            picture = render.blend_with_source(source, picture, args.starting_image_strength)
        images.append(picture)
    assets = await _store_images(ctx, images, args.outputFormat, "generate_image", meta)
    return ToolOutput(assets, model=args.model, backend=PROCEDURAL_IMAGE)


async def edit_image(args: EditImageArgs, ctx: ToolContext) -> ToolOutput:
    remote = _image_backend(ctx, args.model)
    source = await _open(ctx, args.sourceImageIndex, "sourceImageIndex")
    if remote is not None:
        width, height = args.size(fallback=source.size)
        request = ImageRequest(
            prompt=args.prompt,
            width=width,
            height=height,
            seed=args.seeds()[0],
            count=args.numberOfVariations,
            source_png=image_bytes(source, "png"),
        )
        meta = {"prompt": args.prompt, "requested_model": args.model}
        assets = await _remote_images(ctx, remote, request, "edit_image", meta)
        return ToolOutput(assets, model=args.model, backend=remote.name)
    references = [
        await _open(ctx, index, "referenceImageIndices")
        for index in args.referenceImageIndices or []
    ]
    width, height = args.size(fallback=source.size)
    images = []
    for seed in args.seeds():
        base = render.restyle(source, args.prompt, seed, args.strength * 0.6)
        base = base.resize((width, height), Image.Resampling.LANCZOS)
        for reference in references:
            base = render.blend_with_source(reference, base, 0.25)
        overlay = await asyncio.to_thread(
            render.render_procedural, args.prompt, seed, width, height
        )
        images.append(Image.blend(base, overlay, args.strength * 0.35))
    meta = {"prompt": args.prompt, "seeds": args.seeds(), "requested_model": args.model}
    assets = await _store_images(ctx, images, args.outputFormat, "edit_image", meta)
    return ToolOutput(assets, model=args.model, backend=PROCEDURAL_IMAGE)


def _restyle_tool(name: str) -> ...:
    async def run(args: RestyleArgs, ctx: ToolContext) -> ToolOutput:
        resolve_model(IMAGE_MODELS, args.model, "image")
        source = await _open(ctx, args.sourceImageIndex, "sourceImageIndex")
        seed = args.seed if args.seed >= 0 else secrets.randbelow(2**31)
        image = await asyncio.to_thread(render.restyle, source, args.prompt, seed, args.strength)
        meta = {"prompt": args.prompt, "seed": seed, "requested_model": args.model}
        assets = await _store_images(ctx, [image], args.outputFormat, name, meta)
        return ToolOutput(assets, model=args.model, backend=PROCEDURAL_IMAGE)

    return run


async def restore_photo(args: RestorePhotoArgs, ctx: ToolContext) -> ToolOutput:
    resolve_model(IMAGE_MODELS, args.model, "image")
    # Restoration works on the original upload unless told otherwise.
    if args.sourceImageIndex is None and ctx.media.uploads["image"]:
        source = await _open_record(ctx, ctx.media.uploads["image"][0])
    else:
        source = await _open(ctx, args.sourceImageIndex, "sourceImageIndex")
    image = await asyncio.to_thread(render.restore, source)
    assets = await _store_images(
        ctx, [image], args.outputFormat, "restore_photo", {"notes": args.prompt or ""}
    )
    return ToolOutput(assets, model=args.model, backend=PROCEDURAL_IMAGE)


async def change_angle(args: ChangeAngleArgs, ctx: ToolContext) -> ToolOutput:
    resolve_model(IMAGE_MODELS, args.model, "image")
    source = await _open(ctx, args.sourceImageIndex, "sourceImageIndex")
    image = await asyncio.to_thread(
        render.change_angle, source, args.horizontalAngle, args.verticalAngle
    )
    meta = {"horizontal_angle": args.horizontalAngle, "vertical_angle": args.verticalAngle}
    assets = await _store_images(ctx, [image], args.outputFormat, "change_angle", meta)
    return ToolOutput(assets, model=args.model, backend=PROCEDURAL_IMAGE)


def upscaled_size(
    width: int, height: int, scale: int, target_longest: int | None
) -> tuple[int, int]:
    """Output size with edges aligned to 8 px and at least 512 px."""
    factor = target_longest / max(width, height) if target_longest else float(scale)
    new_w, new_h = width * factor, height * factor
    shortest = min(new_w, new_h)
    if shortest < 512:
        new_w, new_h = new_w * 512 / shortest, new_h * 512 / shortest
    return max(512, round(new_w / 8) * 8), max(512, round(new_h / 8) * 8)


async def upscale_image(args: UpscaleImageArgs, ctx: ToolContext) -> ToolOutput:
    source = await _open(ctx, args.sourceImageIndex, "sourceImageIndex")
    width, height = upscaled_size(*source.size, args.scale, args.targetLongestEdge)
    if width * height > 15360 * 15360:
        raise ToolError("PARAMETER_INVALID", "the upscaled image would be too large")
    image = await asyncio.to_thread(render.upscale, source, width, height)
    fmt = "jpg" if max(width, height) > 8192 else "png"
    meta = {"scale": round(width / source.width, 3), "resampler": "lanczos + unsharp mask"}
    record = await ctx.store.put_bytes(
        ctx.owner,
        await asyncio.to_thread(image_bytes, image, fmt),
        tool="upscale_image",
        backend="lanczos",
        meta=meta,
    )
    return ToolOutput([record], model="lanczos", backend="lanczos")


def _image_cost(args: _ImageArgs) -> float:
    width, height = args.size()
    return round(args.numberOfVariations * max(1.0, width * height / 1024**2), 2)


TOOLS = [
    Tool(
        "generate_image",
        "Create images from a text prompt; optionally start from an existing "
        "image (img2img). Results are added to the image list.",
        GenerateImageArgs,
        generate_image,
        cost=_image_cost,
    ),
    Tool(
        "edit_image",
        "Change an image following a prompt, guided by up to 16 reference images.",
        EditImageArgs,
        edit_image,
        cost=_image_cost,
    ),
    Tool(
        "apply_style",
        "Restyle a photo (palette, look) while keeping its composition.",
        RestyleArgs,
        _restyle_tool("apply_style"),
        cost=lambda args: 1.0,
    ),
    Tool(
        "refine_result",
        "Make a follow-up adjustment to a generated image (default: the latest one).",
        RestyleArgs,
        _restyle_tool("refine_result"),
        cost=lambda args: 1.0,
    ),
    Tool(
        "restore_photo",
        "Clean up and restore an uploaded photo: noise, contrast, sharpness, colour.",
        RestorePhotoArgs,
        restore_photo,
        cost=lambda args: 1.0,
    ),
    Tool(
        "change_angle",
        "Show an image from a different camera angle.",
        ChangeAngleArgs,
        change_angle,
        cost=lambda args: 1.0,
    ),
    Tool(
        "upscale_image",
        "Enlarge an image without a prompt (by a factor or to a longest edge; "
        "edges aligned to 8 px).",
        UpscaleImageArgs,
        upscale_image,
        cost=lambda args: 0.5,
    ),
]
