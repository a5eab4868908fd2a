"""Running an image job on its backend: the built-in procedural renderer or a configured remote
one. Results are encoded in the asked format and stored; the options the caller set that the
backend cannot honour come back as warnings instead of vanishing.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PIL import Image

from sogni_intelligence.errors import ToolError
from sogni_intelligence.media import image as render
from sogni_intelligence.media.image_request import (
    Feature,
    ImageRequest,
    LoraBackend,
    RemoteImageBackend,
)
from sogni_intelligence.media.loras import backend_lora, scan_catalog
from sogni_intelligence.media.models import IMAGE_MODELS, PROCEDURAL_IMAGE, resolve_model
from sogni_intelligence.media.sniff import sniff
from sogni_intelligence.media.store import AssetRecord, MadeFacts, image_bytes
from sogni_intelligence.store.personal_loras import PersonalLoraStore
from sogni_intelligence.tools.base import ToolArgs, ToolContext

# The argument that asks for each optional feature.
_ARGUMENT_FEATURES: dict[str, Feature] = {
    "seed": "seed",
    "negativePrompt": "negative_prompt",
    "starting_image_strength": "strength",
    "strength": "strength",
    "guidance": "guidance",
    "mask_image_url": "mask",
    "gptImageQuality": "gpt_quality",
    "gptImageBackground": "gpt_background",
    "loras": "loras",
    "loraStrengths": "loras",
    "quality": "restore_quality",
}
DEFAULT_QUALITY = 92


@dataclass(frozen=True)
class Blob:
    """An image file's bytes, with its size when it was encoded here (storing it then needs no
    decode); a remote backend's bytes come without and are decoded when stored."""

    data: bytes
    made: MadeFacts | None = None


def remote_backend(ctx: ToolContext, model: str) -> RemoteImageBackend | None:
    """The configured remote backend behind `model`, or None for the built-in renderer; an
    unknown id is a PARAMETER_INVALID that lists the known ones."""
    remotes = ctx.services.image_backends
    table: dict[str, str] = dict(IMAGE_MODELS)
    for backend in remotes.values():
        table.update(dict.fromkeys(backend.aliases, backend.name))
    return remotes.get(resolve_model(table, model, "image"))


def ignored(args: ToolArgs, features: frozenset[Feature], backend: str) -> list[str]:
    """One warning naming every argument the caller set that `backend` does not honour."""
    names = [
        name
        for name, feature in _ARGUMENT_FEATURES.items()
        if name in args.model_fields_set and _asks(args, name) and feature not in features
    ]
    if not names:
        return []
    return [f"{', '.join(names)}: not supported by the {backend} backend, ignored"]


def _asks(args: ToolArgs, name: str) -> bool:
    value = getattr(args, name)
    if name == "seed":
        return value >= 0
    if name == "gptImageBackground":
        return value == "transparent"  # auto and opaque are what every backend does
    return value is not None


async def backend_loras(
    ctx: ToolContext, args: ToolArgs, backend: RemoteImageBackend
) -> list[tuple[Path, float]]:
    """The LoRA files the call asks `backend` to apply, each with its strength (1.0 unless
    given): files in the backend's `lora_dirs` or the caller's personal LoRAs. None where the
    backend takes no LoRAs (those arguments are then named in a warning); an id that names
    nothing this backend can load is PARAMETER_INVALID."""
    if "loras" not in backend.features or not isinstance(backend, LoraBackend):
        return []
    ids: list[str] = getattr(args, "loras", None) or []
    strengths: list[float] | None = getattr(args, "loraStrengths", None)
    if len(set(ids)) != len(ids):
        raise ToolError("PARAMETER_INVALID", "loras: an id is listed twice")
    personal = PersonalLoraStore(ctx.store.db)
    found: list[tuple[Path, float]] = []
    for i, lora in enumerate(ids):
        path = await backend_lora(backend.config, ctx.store, personal, ctx.owner, lora)
        if path is None:
            known = [f.lora_id for f in scan_catalog([backend.config])]
            raise ToolError(
                "PARAMETER_INVALID",
                f"loras: unknown LoRA {lora!r}; known: {', '.join(known[:20]) or 'none'}",
            )
        found.append((path, 1.0 if strengths is None else strengths[i]))
    return found


def request_warnings(request: ImageRequest, backend: RemoteImageBackend) -> list[str]:
    if request.source_png is not None and "source" not in backend.features:
        return [f"source image: the {backend.name} backend renders from the prompt only"]
    return []


async def run_remote(
    ctx: ToolContext,
    backend: RemoteImageBackend,
    request: ImageRequest,
    prompts: list[str],
    seeds: list[int],
) -> list[bytes]:
    """One call for a batch of one prompt, else one call per variation (dynamic prompts)."""
    if len(set(prompts)) == 1:
        batch = replace(request, prompt=prompts[0], seed=seeds[0], count=len(seeds))
        return await backend.generate(batch, ctx.progress)
    images: list[bytes] = []
    for i, (prompt, seed) in enumerate(zip(prompts, seeds, strict=True)):

        def progress(fraction: float, message: str | None = None, i: int = i) -> None:
            ctx.progress((i + fraction) / len(seeds), message)

        one = replace(request, prompt=prompt, seed=seed, count=1)
        images += await backend.generate(one, progress)
    return images


def reencoded(data: bytes, fmt: str, compression: int | None, encoded_by_backend: bool) -> bytes:
    """A backend's result in the asked format (and JPEG/WebP quality, unless the backend
    already applied it)."""
    sniffed = sniff(data[:64])
    same = sniffed is not None and sniffed.extension == fmt
    if same and (compression is None or encoded_by_backend):
        return data
    with Image.open(io.BytesIO(data)) as opened:
        opened.load()
        return encode(opened, fmt, compression)


def composited(
    data: bytes, change: Callable[[Image.Image], Image.Image], fmt: str, compression: int | None
) -> Blob:
    """A backend's result decoded, changed here (e.g. limited to a mask) and encoded."""
    with Image.open(io.BytesIO(data)) as opened:
        opened.load()
        return encoded(change(opened), fmt, compression)


def encode(image: Image.Image, fmt: str, compression: int | None) -> bytes:
    return image_bytes(image, fmt, DEFAULT_QUALITY if compression is None else max(1, compression))


def encoded(image: Image.Image, fmt: str, compression: int | None) -> Blob:
    """`image` encoded in `fmt`, with the size it was encoded at."""
    return Blob(encode(image, fmt, compression), MadeFacts(image.width, image.height))


async def render_all(
    ctx: ToolContext,
    make: Callable[[int], Image.Image],
    count: int,
    fmt: str,
    compression: int | None = None,
) -> list[Blob]:
    """Run `make(i)` and encode its picture for each variation, in one worker-thread call
    each; progress per image."""

    def one(i: int) -> Blob:
        return encoded(make(i), fmt, compression)

    blobs = []
    for i in range(count):
        blobs.append(await asyncio.to_thread(one, i))
        ctx.progress((i + 1) / count, f"image {i + 1} of {count}")
    return blobs


async def store_all(
    ctx: ToolContext,
    blobs: list[Blob],
    *,
    tool: str,
    backend: str,
    meta: dict[str, Any],
    per_image: list[dict[str, Any]],
) -> list[AssetRecord]:
    """Store the results; `per_image[i]` adds what differs between variations (seed, prompt).
    A remote backend may return more images than asked for; those get the shared facts only."""
    if backend == PROCEDURAL_IMAGE:
        meta = {**meta, "renderer": render.RENDERER_NOTE}
    return [
        await ctx.store.put_bytes(
            ctx.owner,
            blob.data,
            tool=tool,
            backend=backend,
            meta={**meta, **(per_image[i] if i < len(per_image) else {}), "variation": i},
            made=blob.made,
        )
        for i, blob in enumerate(blobs)
    ]
