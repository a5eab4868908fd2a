"""The images an image tool works from: sources by index, the context images of an edit (with
a persona filter), and an edit mask given as a URL or a data URI.

A mask URL goes through the same guarded fetch as every other client URL (no private
addresses, size and time limits; our own media URLs are read from the asset store).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io

from PIL import Image, UnidentifiedImageError

from sogni_intelligence.media.fetch import FetchError, FetchPolicy, fetch_media
from sogni_intelligence.media.store import AssetRecord
from sogni_intelligence.tools.base import ToolContext, ToolError

MASK_MAX_BYTES = 20 * 1024 * 1024


async def open_image(ctx: ToolContext, index: int | None, argument: str) -> Image.Image:
    return await open_record(ctx, ctx.media.resolve("image", index, argument))


async def open_record(ctx: ToolContext, record: AssetRecord) -> Image.Image:
    path = await ctx.store.local_path(record)

    def load() -> Image.Image:
        with Image.open(path) as image:
            return image.convert("RGB")

    return await asyncio.to_thread(load)


def persona_image(ctx: ToolContext, name: str) -> AssetRecord | None:
    """The image labelled with `name` (case and spacing ignored), uploads first."""
    wanted = " ".join(name.lower().split())
    for record, _ in ctx.media.entries():
        label = ctx.media.labels.get(record.id)
        if record.kind == "image" and label and " ".join(label.lower().split()) == wanted:
            return record
    return None


def edit_context(
    ctx: ToolContext,
    source_index: int | None,
    reference_indices: list[int] | None,
    persona: str | None,
) -> tuple[AssetRecord, list[AssetRecord], list[str]]:
    """(source, further context images, warnings) for an edit.

    Without explicit references, the other uploaded images are context too. A persona found
    among the labelled images is the only context: the source unless an explicit result index
    names another image."""
    warnings: list[str] = []
    chosen = persona_image(ctx, persona) if persona else None
    if persona and chosen is None:
        warnings.append(f"personaName: no image is labelled {persona!r}, all context is used")
    if chosen is not None:
        if source_index is not None and source_index >= 0:
            return ctx.media.resolve("image", source_index, "sourceImageIndex"), [chosen], warnings
        return chosen, [], warnings
    source = ctx.media.resolve("image", source_index, "sourceImageIndex")
    if reference_indices is not None:
        references = [
            ctx.media.resolve("image", index, "referenceImageIndices")
            for index in reference_indices
        ]
    else:
        references = [r for r in ctx.media.uploads["image"] if r.id != source.id]
    return source, references, warnings


async def load_mask(ctx: ToolContext, url: str) -> Image.Image:
    """The mask image with an alpha channel, from a data URI or a fetched URL."""
    if url.startswith("data:"):
        data = _data_uri(url)
    else:
        policy = ctx.services.fetch_policy or FetchPolicy(
            own_base_url=ctx.store.signer.base_url, max_bytes=MASK_MAX_BYTES
        )
        try:
            fetched = await fetch_media(
                url, policy=policy, store=ctx.store, owner=ctx.owner, kinds=("image",)
            )
        except FetchError as exc:
            raise ToolError("PARAMETER_INVALID", f"mask_image_url: {exc.message}") from exc
        data = fetched.data
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if "A" not in opened.getbands() and "transparency" not in opened.info:
                raise ToolError(
                    "PARAMETER_INVALID",
                    "mask_image_url: the mask needs an alpha channel (transparent = edit)",
                )
            return opened.convert("RGBA")
    except (UnidentifiedImageError, OSError) as exc:
        raise ToolError("PARAMETER_INVALID", "mask_image_url: not a readable image") from exc


def _data_uri(uri: str) -> bytes:
    header, comma, payload = uri.partition(",")
    if not comma or not header.endswith(";base64"):
        raise ToolError("PARAMETER_INVALID", "mask_image_url: a data URI must be base64")
    if len(payload) > MASK_MAX_BYTES * 4 // 3 + 4:
        raise ToolError("PARAMETER_INVALID", "mask_image_url: the mask is too large")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ToolError("PARAMETER_INVALID", "mask_image_url: the data URI is not base64") from exc
