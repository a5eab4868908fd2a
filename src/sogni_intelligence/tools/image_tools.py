"""Image tools: generate, edit, restyle, restore, refine, change angle and upscale.

All of them run on the procedural renderer by default (see `media/image.py`); the public
model ids resolve to it through the alias table, and the artifacts say what really ran. A
configured backend takes over the ids it lists (upscale_image is geometric and always runs
here; change_angle runs on a backend that takes a source image, else here). Arguments a
backend cannot honour are named in `warnings`.
"""

from __future__ import annotations

import asyncio
import math
import secrets
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

from PIL import Image

from sogni_intelligence.media import image as render
from sogni_intelligence.media.image_request import Feature, ImageRequest, RemoteImageBackend
from sogni_intelligence.media.models import PROCEDURAL_IMAGE
from sogni_intelligence.media.store import image_bytes
from sogni_intelligence.tools.base import Tool, ToolContext, ToolError, ToolOutput, tool_family
from sogni_intelligence.tools.camera_angles import describe, parse_angle
from sogni_intelligence.tools.dynamic_prompts import variation_prompts
from sogni_intelligence.tools.image_args import (
    DEFAULT_SIDE,
    ChangeAngleArgs,
    EditImageArgs,
    GenerateImageArgs,
    RestorePhotoArgs,
    RestyleArgs,
    SizeArgs,
    UpscaleImageArgs,
    fit,
    reshaped,
)
from sogni_intelligence.tools.image_backends import (
    Blob,
    backend_loras,
    composited,
    encoded,
    ignored,
    reencoded,
    remote_backend,
    render_all,
    request_warnings,
    run_remote,
    store_all,
)
from sogni_intelligence.tools.image_inputs import edit_context, load_mask, open_image, open_record

# What the procedural renderer honours, per tool.
_GENERATE: frozenset[Feature] = frozenset({"seed", "negative_prompt", "strength", "gpt_background"})
_EDIT: frozenset[Feature] = frozenset({"seed", "negative_prompt", "strength", "mask"})
_RESTYLE: frozenset[Feature] = frozenset({"seed", "strength"})
_RESTORE: frozenset[Feature] = frozenset({"seed", "restore_quality"})
RESTORE_PROMPT = (
    "Restore this photo: remove noise, scratches and blur; balance contrast and colour."
)
MAX_UPSCALED_EDGE = 15360


class _Job:
    """One call of an image tool: the backend it runs on, the output size, a prompt and a seed
    per variation (dynamic prompts expand per variation) and the warnings gathered so far."""

    def __init__(
        self,
        tool: str,
        args: Any,
        remote: RemoteImageBackend | None,
        size: tuple[int, int],
        prompt: str,
        warnings: list[str],
    ) -> None:
        self.tool, self.args, self.remote, self.warnings = tool, args, remote, warnings
        self.width, self.height = size
        self.seeds: list[int] = args.seeds()
        self.prompts = variation_prompts(prompt, len(self.seeds))

    def request(self, **options: Any) -> ImageRequest:
        """The remote backend's request: the first variation's prompt and seed (`run_remote`
        sets each variation's own), the size and format, and the tool's `options`."""
        return ImageRequest(
            prompt=self.prompts[0],
            width=self.width,
            height=self.height,
            seed=self.seeds[0],
            output_format=self.args.fmt,
            **options,
        )

    async def run(
        self,
        ctx: ToolContext,
        request: ImageRequest | None,
        make: Callable[[int], Image.Image],
        features: frozenset[Feature],
        compression: int | None = None,
        after_mask: Callable[[Image.Image], Image.Image] | None = None,
    ) -> ToolOutput:
        """Render on the remote backend (with `request`) or procedurally (with `make(i)`),
        store the results and name what was ignored. `after_mask` limits a remote backend's
        pictures to a mask it could not take itself."""
        args, remote, warnings = self.args, self.remote, self.warnings
        if remote is not None and request is not None:
            honoured = remote.features | ({"mask"} if after_mask else frozenset())
            warnings += ignored(args, honoured, remote.name)
            warnings += request_warnings(request, remote)
            request = replace(request, lora_files=await backend_loras(ctx, args, remote))
            remote_blobs = await run_remote(ctx, remote, request, self.prompts, self.seeds)
            encoded_here = "output_compression" in remote.features
            blobs = [
                await asyncio.to_thread(composited, data, after_mask, args.fmt, compression)
                if after_mask
                else Blob(
                    await asyncio.to_thread(reencoded, data, args.fmt, compression, encoded_here)
                )
                for data in remote_blobs
            ]
            backend = remote.name
        else:
            warnings += ignored(args, features, PROCEDURAL_IMAGE)
            blobs = await render_all(ctx, make, len(self.seeds), args.fmt, compression)
            backend = PROCEDURAL_IMAGE
        per_image = [
            {"seed": s, "prompt": p} for p, s in zip(self.prompts, self.seeds, strict=True)
        ]
        meta = {"requested_model": args.model}
        assets = await store_all(
            ctx, blobs, tool=self.tool, backend=backend, meta=meta, per_image=per_image
        )
        return ToolOutput(assets, model=args.model, backend=backend, warnings=warnings)


def _png(image: Image.Image) -> bytes:
    return image_bytes(image, "png")


async def generate_image(args: GenerateImageArgs, ctx: ToolContext) -> ToolOutput:
    remote = remote_backend(ctx, args.model)
    source = None
    if args.img2img:
        source = await open_image(ctx, args.sourceImageIndex, "sourceImageIndex")
    base = (DEFAULT_SIDE, DEFAULT_SIDE)
    if source is not None:  # keep the source's shape unless a size or shape is asked for
        base = fit(*reshaped(base, source.width / source.height))
    keep = 0.5 if args.starting_image_strength is None else args.starting_image_strength
    warnings = args.size_warnings() + args.encoding_warnings()
    job = _Job("generate_image", args, remote, args.output_size(base), args.prompt, warnings)
    features = _GENERATE if source is None else _GENERATE - {"gpt_background"}
    transparent = args.transparent and source is None and args.fmt != "jpg"
    request = None
    if remote is not None:
        request = job.request(
            negative_prompt=args.negativePrompt,
            source_png=None if source is None else _png(source),
            strength=None if args.starting_image_strength is None else round(1 - keep, 6),
            guidance=args.guidance,
            gpt_quality=args.gptImageQuality,
            gpt_background=args.gptImageBackground,
            output_compression=args.gptImageOutputCompression,
        )

    def make(i: int) -> Image.Image:
        picture = render.render_procedural(
            job.prompts[i],
            job.seeds[i],
            job.width,
            job.height,
            avoid=args.negativePrompt,
            transparent=transparent,
        )
        return picture if source is None else render.blend_with_source(source, picture, keep)

    return await job.run(ctx, request, make, features, args.gptImageOutputCompression)


async def edit_image(args: EditImageArgs, ctx: ToolContext) -> ToolOutput:
    remote = remote_backend(ctx, args.model)
    source_record, reference_records, warnings = edit_context(
        ctx, args.sourceImageIndex, args.referenceImageIndices, args.personaName
    )
    source = await open_record(ctx, source_record)
    mask = None if args.mask_image_url is None else await load_mask(ctx, args.mask_image_url)
    warnings += args.size_warnings() + args.encoding_warnings()
    job = _Job("edit_image", args, remote, args.output_size(source.size), args.prompt, warnings)
    request = None
    after_mask: Callable[[Image.Image], Image.Image] | None = None
    if remote is not None and mask is not None and "mask" not in remote.features:
        # The backend edits the whole picture; the mask then decides where the edit shows.
        after_mask = partial(render.apply_mask, source=source, mask=mask)
    if remote is not None:
        if reference_records:
            named = "referenceImageIndices" if args.referenceImageIndices else "other uploads"
            warnings.append(f"{named}: the {remote.name} backend takes only the source image")
        request = job.request(
            negative_prompt=args.negativePrompt,
            source_png=_png(source),
            strength=args.strength,
            mask_png=None if mask is None or after_mask else _png(mask),
            gpt_quality=args.gptImageQuality,
            gpt_background=args.gptImageBackground,
            output_compression=args.gptImageOutputCompression,
        )
    references = [await open_record(ctx, record) for record in reference_records]
    width, height = job.width, job.height

    def make(i: int) -> Image.Image:
        prompt, seed = job.prompts[i], job.seeds[i]
        edited = render.reshape(
            render.restyle(source, prompt, seed, args.strength * 0.6), width, height
        )
        for reference in references:
            edited = render.blend_with_source(reference, edited, 0.25)
        overlay = render.render_procedural(prompt, seed, width, height, avoid=args.negativePrompt)
        edited = Image.blend(edited, overlay, args.strength * 0.35)
        return edited if mask is None else render.apply_mask(edited, source, mask)

    return await job.run(ctx, request, make, _EDIT, args.gptImageOutputCompression, after_mask)


def _restyle_tool(name: str) -> Callable[[RestyleArgs, ToolContext], Any]:
    async def run(args: RestyleArgs, ctx: ToolContext) -> ToolOutput:
        remote = remote_backend(ctx, args.model)
        source = await open_image(ctx, args.sourceImageIndex, "sourceImageIndex")
        size, warnings = args.output_size(source.size)
        job = _Job(name, args, remote, size, args.prompt, warnings)
        request = None
        if remote is not None:
            request = job.request(source_png=_png(source), strength=args.strength)

        def make(i: int) -> Image.Image:
            styled = render.restyle(source, job.prompts[i], job.seeds[i], args.strength)
            return render.reshape(styled, job.width, job.height)

        return await job.run(ctx, request, make, _RESTYLE)

    return run


async def restore_photo(args: RestorePhotoArgs, ctx: ToolContext) -> ToolOutput:
    remote = remote_backend(ctx, args.model)
    # Restoration works on the original upload unless told otherwise.
    if args.sourceImageIndex is None and ctx.media.uploads["image"]:
        source = await open_record(ctx, ctx.media.uploads["image"][0])
    else:
        source = await open_image(ctx, args.sourceImageIndex, "sourceImageIndex")
    size, warnings = args.output_size(source.size)
    job = _Job("restore_photo", args, remote, size, args.prompt or RESTORE_PROMPT, warnings)
    request = None
    if remote is not None:
        request = job.request(source_png=_png(source))
    thorough = args.quality == "hq"

    def make(i: int) -> Image.Image:
        restored = render.restore(source, job.seeds[i], thorough)
        return render.reshape(restored, job.width, job.height)

    return await job.run(ctx, request, make, _RESTORE)


async def change_angle(args: ChangeAngleArgs, ctx: ToolContext) -> ToolOutput:
    remote = remote_backend(ctx, args.model)
    source = await open_image(ctx, args.sourceImageIndex, "sourceImageIndex")
    angle = parse_angle(args.description or args.prompt)
    if args.horizontalAngle is not None:
        angle = replace(angle, degrees=args.horizontalAngle)
    if args.verticalAngle is not None:
        angle = replace(angle, tilt=args.verticalAngle)
    warnings = []
    if angle.unknown:
        field = "description" if args.description else "prompt"
        warnings.append(f"{field}: {angle.unknown!r} names no known camera angle, ignored")
    move = angle.scaled(args.loraStrength)
    width, height = source.size if args.aspectRatio is None else fit(*args.shaped(source.size))
    meta: dict[str, Any] = {
        "requested_model": args.model,
        "horizontal_angle": move.degrees,
        "vertical_angle": move.tilt,
        "zoom": move.zoom,
    }
    if remote is not None and "source" in remote.features:
        # The backend redraws the source as seen from the named view; loraStrength is how far
        # the picture may move away from it.
        view = describe(angle)
        seed = secrets.randbelow(2**31)
        request = ImageRequest(
            prompt=f"the same subject and scene, seen from a {view}",
            width=width,
            height=height,
            seed=seed,
            source_png=_png(source),
            strength=args.loraStrength,
            output_format=args.fmt,
        )
        [data, *_] = await remote.generate(request, ctx.progress)
        blobs = [Blob(await asyncio.to_thread(reencoded, data, args.fmt, None, False))]
        backend = remote.name
        meta |= {"view": view, "seed": seed}
    else:
        if remote is not None:
            warnings.append(
                f"model: the {remote.name} backend takes no source image, so the "
                "view was turned geometrically here"
            )

        def make(i: int) -> Image.Image:
            turned = render.change_angle(source, move.degrees, move.tilt, move.zoom)
            return render.reshape(turned, width, height)

        blobs = await render_all(ctx, make, 1, args.fmt)
        backend = PROCEDURAL_IMAGE
    assets = await store_all(
        ctx, blobs, tool="change_angle", backend=backend, meta=meta, per_image=[{}]
    )
    return ToolOutput(assets, model=args.model, backend=backend, warnings=warnings)


def upscaled_size(
    width: int, height: int, scale: int, target_longest: int | None
) -> tuple[int, int]:
    """Output size with edges aligned to 8 px; an edge under 512 px is refused with the
    smallest longest edge that works (the picture is never stretched)."""
    factor = target_longest / max(width, height) if target_longest else float(scale)
    new_w, new_h = round(width * factor / 8) * 8, round(height * factor / 8) * 8
    if min(new_w, new_h) < 512:
        needed = math.ceil(512 * max(width, height) / min(width, height) / 8) * 8
        hint = (
            f"use targetLongestEdge={needed} or more"
            if needed <= MAX_UPSCALED_EDGE
            else "the image is too narrow to upscale"
        )
        raise ToolError(
            "PARAMETER_INVALID",
            f"upscaling {width}x{height} that way gives {new_w}x{new_h}, under 512 px; {hint}",
        )
    if max(new_w, new_h) > MAX_UPSCALED_EDGE:
        raise ToolError(
            "PARAMETER_INVALID",
            f"upscaling {width}x{height} that way gives {new_w}x{new_h}, over the "
            f"{MAX_UPSCALED_EDGE} px limit; use targetLongestEdge",
        )
    return new_w, new_h


async def upscale_image(args: UpscaleImageArgs, ctx: ToolContext) -> ToolOutput:
    source = await open_image(ctx, args.sourceImageIndex, "sourceImageIndex")
    width, height = upscaled_size(*source.size, args.scale, args.targetLongestEdge)
    fmt = "jpg" if max(width, height) > 8192 else "png"
    blob = await asyncio.to_thread(
        lambda: encoded(render.upscale(source, width, height), fmt, None)
    )
    meta = {"scale": round(width / source.width, 3), "resampler": "lanczos + unsharp mask"}
    record = await ctx.store.put_bytes(
        ctx.owner, blob.data, tool="upscale_image", backend="lanczos", meta=meta, made=blob.made
    )
    return ToolOutput([record], model="lanczos", backend="lanczos")


def _image_cost(args: SizeArgs) -> float:
    width, height = args.output_size((DEFAULT_SIDE, DEFAULT_SIDE))
    count = getattr(args, "numberOfVariations", 1)
    return round(count * max(1.0, width * height / 1024**2), 2)


def _per_variation(args: RestyleArgs | RestorePhotoArgs) -> float:
    return float(args.numberOfVariations)


TOOLS = tool_family(
    "media",
    "image",
    [
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
            "Change an image following a prompt, guided by further context images "
            "(the other uploads, or those named); a mask limits where it changes.",
            EditImageArgs,
            edit_image,
            cost=_image_cost,
            needs=frozenset({"image"}),
        ),
        Tool(
            "apply_style",
            "Restyle a photo (palette, look) while keeping its composition.",
            RestyleArgs,
            _restyle_tool("apply_style"),
            cost=_per_variation,
            needs=frozenset({"image"}),
        ),
        Tool(
            "refine_result",
            "Make a follow-up adjustment to a generated image (default: the latest one).",
            RestyleArgs,
            _restyle_tool("refine_result"),
            cost=_per_variation,
            needs=frozenset({"image"}),
        ),
        Tool(
            "restore_photo",
            "Clean up and restore an uploaded photo: noise, contrast, sharpness, colour.",
            RestorePhotoArgs,
            restore_photo,
            cost=_per_variation,
            needs=frozenset({"image"}),
        ),
        Tool(
            "change_angle",
            "Show an image from a different camera angle (azimuth, elevation, distance).",
            ChangeAngleArgs,
            change_angle,
            cost=lambda args: 1.0,
            needs=frozenset({"image"}),
        ),
        Tool(
            "upscale_image",
            "Enlarge an image without a prompt (by a factor or to a longest edge; "
            "edges aligned to 8 px).",
            UpscaleImageArgs,
            upscale_image,
            cost=lambda args: 0.5,
            needs=frozenset({"image"}),
        ),
    ],
)
