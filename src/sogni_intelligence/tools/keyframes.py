"""What the video tools share on the keyframe backend: model selectors, output sizes, keyframes
drawn from prompts or taken from images, seeds, soundtracks and storing the results.

The keyframe backend is not a video diffusion model: still keyframes get Ken Burns camera moves
and dissolve into each other (see `media/video/`); every artifact's metadata says what ran.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from sogni_intelligence.media.image import render_procedural
from sogni_intelligence.media.models import (
    DEFAULT_VIDEO_MODEL,
    KEYFRAME_VIDEO,
    VIDEO_MODELS,
    resolve_model,
)
from sogni_intelligence.media.progress import Progress
from sogni_intelligence.media.store import AssetRecord, MadeFacts
from sogni_intelligence.media.video.clips import keyframe_clip
from sogni_intelligence.media.video.encoding import FPS, even
from sogni_intelligence.media.video.motion import Motion, Soundtrack, pick_motion
from sogni_intelligence.media.video.probe import cover, extract_frame
from sogni_intelligence.tools.base import ToolContext

FFMPEG = "ffmpeg"
MAX_SIDE = 1920
RENDERER = "procedural keyframes + ffmpeg (Ken Burns zoompan, xfade dissolves)"

# Speed tiers and two-stage forms of the hosted MiniMax H3 models, named in the hosted tool
# manifest's videoModel lists; like every video id they run on the keyframe backend here.
_TIER_SELECTORS = (
    "minimax-h3-t2v-turbo",
    "minimax-h3-fasth3-t2v-turbo",
    "minimax-h3-fasth3-t2v-turbo-2stage",
    "minimax-h3-r2v-turbo",
    "minimax-h3-r2v-2stage",
    "minimax-h3-r2v-balanced-2stage",
    "minimax-h3-fasth3-r2v-turbo",
    "minimax-h3-fasth3-r2v-turbo-2stage",
    "minimax-h3-turbo",
    "minimax-h3-fasth3-turbo",
    "minimax-h3-fasth3-turbo-2stage",
    "minimax-h3-balanced",
    "minimax-h3-t2v-balanced",
    "minimax-h3-r2v-balanced",
    "minimax-h3-i2v-turbo",
    "minimax-h3-fasth3-i2v-turbo",
    "minimax-h3-fasth3-i2v-turbo-2stage",
    "minimax-h3-flf2v",
    "minimax-h3-flf2v-turbo",
    "minimax-h3-fasth3-flf2v-turbo",
    "minimax-h3-fasth3-flf2v-turbo-2stage",
    "minimax-h3-i2v-balanced",
    "minimax-h3-flf2v-balanced",
)
SELECTORS: dict[str, str] = {
    **VIDEO_MODELS,
    **dict.fromkeys(_TIER_SELECTORS, KEYFRAME_VIDEO),
}
#: Every videoModel value the keyframe tools take, for their schemas (and call grammars).
VIDEO_MODEL_IDS = sorted({*SELECTORS, "auto"})
# Models without native sound (the hosted WAN 2.2 renders silent clips).
SILENT_MODELS = frozenset({"wan22"})


def video_backend(name: str) -> str:
    """The backend behind a videoModel id; "auto" is the default model."""
    if name == "auto":
        name = DEFAULT_VIDEO_MODEL
    return resolve_model(SELECTORS, name, "video")


def pick_seed(seed: int) -> int:
    """The seed to use: the caller's, or a random one for -1."""
    return seed if seed >= 0 else secrets.randbelow(2**31)


def plan_size(
    width: int | None,
    height: int | None,
    ratio: float | None,
    short: int | None,
    fallback_ratio: float,
    default_short: int = 720,
) -> tuple[int, int, list[str]]:
    """Output size: explicit sides win, then a ratio with a short side; capped and even."""
    warnings: list[str] = []
    if width and height:
        w, h = float(width), float(height)
    else:
        r = ratio or fallback_ratio
        if width:
            w, h = float(width), width / r
        elif height:
            w, h = height * r, float(height)
        else:
            side = short or default_short
            w, h = (side * r, float(side)) if r >= 1 else (float(side), side / r)
    if max(w, h) > MAX_SIDE:
        factor = MAX_SIDE / max(w, h)
        w, h = w * factor, h * factor
        warnings.append(f"the size was reduced to fit {MAX_SIDE} px on the long side")
    return even(w, 32), even(h, 32), warnings


def _work_size(width: int, height: int) -> tuple[int, int]:
    """Keyframes are drawn larger than the video so the camera moves stay sharp."""
    factor = min(2.0, 3840 / max(width, height))
    return round(width * factor), round(height * factor)


def stable_seed(*parts: Any) -> int:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big")


_HINTS = (
    (r"\b(zoom(ing)? in|push(es|ing)? in|dolly in|close[- ]?up)\b", "push in"),
    (r"\b(zoom(ing)? out|pull(s|ing)? (out|back)|dolly out|reveal)\b", "pull out"),
    (r"\b(pan(s|ning)? left|track(s|ing)? left)\b", "pan left"),
    (r"\b(pan(s|ning)? right|track(s|ing)? right)\b", "pan right"),
    (r"\b(tilt(s|ing)? up|pan(s|ning)? up|crane up|rising)\b", "pan up"),
    (r"\b(tilt(s|ing)? down|pan(s|ning)? down|crane down)\b", "pan down"),
)


def camera_hint(prompt: str) -> str | None:
    """A camera move the prompt asks for, if it names one."""
    for pattern, move in _HINTS:
        if re.search(pattern, prompt, re.IGNORECASE):
            return move
    return None


def keyframe_count(duration: float) -> int:
    """About one keyframe per four seconds, two to eight."""
    return max(1, min(8, round(duration / 4 + 0.49)))


@dataclass
class Frame:
    """A keyframe to prepare: drawn from a prompt, or taken from an image file."""

    prompt: str | None = None
    seed: int = 0
    path: Path | None = None
    blend_with: Path | None = None
    avoid: str | None = None


def _prepare_frame(frame: Frame, width: int, height: int, out: Path) -> None:
    work = _work_size(width, height)
    if frame.path is not None:
        with Image.open(frame.path) as image:
            picture = cover(ImageOps.exif_transpose(image), *work)
    else:
        assert frame.prompt is not None
        scale = min(1.0, 1280 / max(width, height))
        drawn = render_procedural(
            frame.prompt,
            frame.seed,
            even(width * scale),
            even(height * scale),
            avoid=frame.avoid,
        )
        picture = drawn.convert("RGB").resize(work, Image.Resampling.BICUBIC)
        if frame.blend_with is not None:
            with Image.open(frame.blend_with) as base:
                picture = Image.blend(cover(base, *work), picture, 0.5)
    picture.save(out, "PPM")


async def prepare_frames(
    frames: Sequence[Frame], width: int, height: int, workdir: Path, tag: str
) -> list[Path]:
    """The keyframes as uncompressed PPM files in `workdir`: ffmpeg reads exactly the pixels a
    PNG would give it, and writing one costs a few ms where a PNG encode of a 2560x1440
    keyframe costs a quarter of a second."""
    paths = [workdir / f"{tag}-key{i}.ppm" for i in range(len(frames))]
    await asyncio.gather(
        *(
            asyncio.to_thread(_prepare_frame, frame, width, height, path)
            for frame, path in zip(frames, paths, strict=True)
        )
    )
    return paths


async def animate(
    keyframes: Sequence[Path],
    out: Path,
    *,
    size: tuple[int, int],
    duration: float,
    prompt: str,
    motion_seed: int,
    opens: bool,
    closes: bool = False,
    fps: Fraction = FPS,
    track: Soundtrack,
    progress: Progress | None = None,
) -> tuple[list[Motion], MadeFacts]:
    """Encode prepared keyframes as one clip, each with a camera move: the one the prompt names
    when it names one, else drawn from `motion_seed` (the same seed gives the same moves). The
    first keyframe starts on the whole picture when `opens`, the last ends on it when `closes`.

    Returns the moves and the clip's facts as encoded (its length in whole frames, to the
    microsecond as ffprobe gives it), so storing it needs no probe. The keyframe files are
    removed once encoded: uncompressed, they are large."""
    rng = random.Random(motion_seed)
    hint = camera_hint(prompt)
    last = len(keyframes) - 1
    motions = [
        pick_motion(rng, start_full=opens and k == 0, end_full=closes and k == last, prefer=hint)
        for k in range(len(keyframes))
    ]
    width, height = size
    length = await keyframe_clip(
        keyframes,
        motions,
        out,
        width=width,
        height=height,
        duration=duration,
        fps=fps,
        soundtrack=track,
        progress=progress,
    )
    for path in keyframes:
        path.unlink(missing_ok=True)
    return motions, MadeFacts(width, height, round(length, 6), float(fps))


async def soundtrack(
    ctx: ToolContext, generate: bool, seed: int, audio: AssetRecord | None
) -> tuple[Soundtrack, str]:
    if audio is not None:
        return Soundtrack("file", await ctx.store.local_path(audio)), f"audio asset {audio.id}"
    if generate:
        return Soundtrack.ambient_for(seed), "generated ambient tone (not a sound model)"
    return Soundtrack(), "silent"


async def store_video(
    ctx: ToolContext,
    path: Path,
    tool: str,
    backend: str,
    meta: dict[str, Any],
    made: MadeFacts | None = None,
) -> AssetRecord:
    return await ctx.store.put_file(
        ctx.owner, path, tool=tool, backend=backend, meta=meta, made=made
    )


async def last_frames(
    ctx: ToolContext, clips: Sequence[Path], tool: str, workdir: Path
) -> list[AssetRecord]:
    """The last frame of each finished clip, stored as a PNG image asset."""
    records = []
    for i, clip in enumerate(clips):
        frame = await extract_frame(clip, workdir / f"last-frame-{i}.png")
        records.append(
            await ctx.store.put_file(
                ctx.owner, frame, tool=tool, backend=FFMPEG, meta={"role": "last frame"}
            )
        )
    return records


def last_frame_extra(ctx: ToolContext, frames: Sequence[AssetRecord]) -> dict[str, Any]:
    if not frames:
        return {}
    urls = [ctx.store.url(record) for record in frames]
    return {"lastFrameUrl": urls[0], "lastFrameUrls": urls}


def fraction(done: int, total: int, within: float) -> float:
    return min(0.95, (done + within) / total)


async def image_file(ctx: ToolContext, record: AssetRecord, out: Path) -> Path:
    """A PNG copy of an image asset, upright (EXIF), with alpha kept."""

    source = await ctx.store.local_path(record)

    def convert() -> None:
        with Image.open(source) as image:
            ImageOps.exif_transpose(image).convert("RGBA").save(out, "PNG", compress_level=1)

    await asyncio.to_thread(convert)
    return out


# ---------------------------------------------------------------------------------------------
# Tools
