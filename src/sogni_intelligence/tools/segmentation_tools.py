"""remove_background and segment_image on the operator's local segmentation model.

They run only when `segmentation_model` is configured; the unavailable-tools table keeps their
hosted schema and checks, and hands a checked call to these executors when the model is there.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

from PIL import Image, UnidentifiedImageError

from sogni_intelligence.media.fetch import FetchError, FetchPolicy, fetch_media
from sogni_intelligence.media.segmentation import Region, SegmentationModel, cut_out, mask_image
from sogni_intelligence.media.store import image_bytes
from sogni_intelligence.tools.base import ToolContext, ToolError, ToolOutput, ToolServices
from sogni_intelligence.tools.image_inputs import open_image
from sogni_intelligence.tools.unavailable_image_args import (
    RemoveBackgroundArgs,
    SegmentImageArgs,
)


def configured(services: ToolServices) -> bool:
    return services.segmentation is not None


async def _source(args: RemoveBackgroundArgs | SegmentImageArgs, ctx: ToolContext) -> Image.Image:
    if args.source_image_url is None:
        return await open_image(ctx, args.sourceImageIndex, "sourceImageIndex")
    policy = ctx.services.fetch_policy or FetchPolicy(own_base_url=ctx.store.signer.base_url)
    try:
        fetched = await fetch_media(
            args.source_image_url, policy=policy, store=ctx.store, owner=ctx.owner, kinds=("image",)
        )
        with Image.open(io.BytesIO(fetched.data)) as opened:
            return opened.convert("RGB")
    except FetchError as exc:
        raise ToolError("PARAMETER_INVALID", f"source_image_url: {exc.message}") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise ToolError("PARAMETER_INVALID", "source_image_url: not a readable image") from exc


async def _store(
    ctx: ToolContext,
    tool: str,
    model: SegmentationModel,
    picture: Image.Image,
    meta: dict[str, Any],
) -> ToolOutput:
    data = await asyncio.to_thread(image_bytes, picture, "png")
    record = await ctx.store.put_bytes(
        ctx.owner,
        data,
        tool=tool,
        backend=model.backend,
        meta={"model": model.name, "backend": model.backend, **meta},
    )
    return ToolOutput([record], model=model.name, backend=model.backend)


def _model(ctx: ToolContext) -> SegmentationModel:
    assert ctx.services.segmentation is not None  # checked by the caller
    return ctx.services.segmentation


async def remove_background(args: RemoveBackgroundArgs, ctx: ToolContext) -> ToolOutput:
    model = _model(ctx)
    image = await _source(args, ctx)
    classes = await model.classes(image, ctx.progress)
    foreground = classes.foreground()
    picture = cut_out(image, foreground) if args.applyMask else mask_image(foreground)
    return await _store(ctx, "remove_background", model, picture, {"applyMask": args.applyMask})


async def segment_image(args: SegmentImageArgs, ctx: ToolContext) -> ToolOutput:
    model = _model(ctx)
    image = await _source(args, ctx)
    regions = [Region(p.x, p.y, p.x, p.y, p.label == "positive") for p in args.points or []]
    regions += [Region(b.x0, b.y0, b.x1, b.y1, b.label == "positive") for b in args.boxes or []]
    classes = await model.classes(image, ctx.progress)
    mask = classes.select(args.text, regions, args.threshold)
    if not mask.any():
        raise ToolError(
            "PARAMETER_INVALID",
            "nothing was selected: no pixel of the picked classes reaches the threshold "
            f"{args.threshold} (a lower threshold or another selection may find some)",
        )
    picture = cut_out(image, mask) if args.applyMask else mask_image(mask)
    output = await _store(ctx, "segment_image", model, picture, {"applyMask": args.applyMask})
    ignored = [name for name in ("maxInstances", "multimask") if getattr(args, name) is not None]
    if ignored:
        output.warnings.append(
            f"{', '.join(ignored)}: the {model.name} model selects whole classes, not "
            "instances, so it makes one mask"
        )
    return output
