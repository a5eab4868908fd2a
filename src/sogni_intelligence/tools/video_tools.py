"""Video tools: generate, animate, extend, splice, stitch, overlay, subtitle and upscale.

Generation runs on the keyframe backend: still keyframes (drawn by the procedural image
renderer from the prompt, or taken from the caller's images) get Ken Burns camera moves and
dissolve into each other, encoded by ffmpeg. It is not a video diffusion model, and every
artifact's metadata says what ran. The editing tools are plain ffmpeg operations. All outputs
are H.264 + AAC MP4 files; see `media/video.py`.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from PIL import Image, ImageColor, ImageOps
from pydantic import AfterValidator, Field, field_validator, model_validator

from sogni_intelligence.media import video
from sogni_intelligence.media.image import RENDERER_NOTE, render_procedural
from sogni_intelligence.media.models import (
    DEFAULT_VIDEO_MODEL,
    VIDEO_MODELS,
    resolve_model,
)
from sogni_intelligence.media.store import AssetRecord
from sogni_intelligence.tools.base import Tool, ToolArgs, ToolContext, ToolError, ToolOutput

FFMPEG = "ffmpeg"
MAX_SIDE = 1920
MAX_VARIATIONS = 4  # each variation is a full CPU encode; more would keep a request too long
RENDERER = "procedural keyframes + ffmpeg (Ken Burns zoompan, xfade dissolves)"
ANIMATOR = "Ken Burns camera move over the photo + ffmpeg"
_RATIO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*[:x/]\s*(\d+(?:\.\d+)?)\s*$")


# ---------------------------------------------------------------------------------------------
# Argument pieces


def _check_ratio(value: str | None) -> str | None:
    if value is not None:
        _ratio_value(value)
    return value


def _ratio_value(value: str) -> float:
    match = _RATIO.match(value)
    if match is None or float(match.group(2)) == 0:
        raise ValueError("aspectRatio must look like 16:9")
    ratio = float(match.group(1)) / float(match.group(2))
    if not 0.25 <= ratio <= 4:
        raise ValueError("aspectRatio must be between 1:4 and 4:1")
    return ratio


def _check_color(value: str | None) -> str | None:
    if value is not None:
        try:
            ImageColor.getrgb(value)
        except ValueError as exc:
            raise ValueError("color must be a CSS colour name or #RRGGBB") from exc
    return value


AspectRatio = Annotated[str | None, AfterValidator(_check_ratio)]
Color = Annotated[str | None, AfterValidator(_check_color)]
WanRatio = Literal["adaptive", "16:9", "4:3", "1:1", "3:4", "9:16"]


class KeyframeRef(ToolArgs):
    imageIndex: int = Field(description="Image to show (index convention).")
    atSeconds: float = Field(0, ge=0, le=60, description="When it should appear.")


class _CompatArgs(ToolArgs):
    """Options of the hosted models that this backend accepts and ignores (with a warning)."""

    expandPrompt: bool | None = Field(None, description="Accepted; prompts are used as given.")
    skipPromptProcessing: bool | None = Field(None, description="Accepted; no effect here.")
    loras: list[str] | None = Field(None, max_length=8, description="Accepted; not supported.")
    loraStrengths: list[float] | None = Field(None, max_length=8, description="Accepted.")
    voicePersonaName: str | None = Field(None, description="Accepted; not supported.")
    watermark: bool | None = Field(None, description="Accepted; outputs are never watermarked.")

    def compat_warnings(self) -> list[str]:
        ignored = [
            name
            for name in ("expandPrompt", "loras", "loraStrengths", "voicePersonaName", "watermark")
            if getattr(self, name)
        ]
        if not ignored:
            return []
        return [f"ignored on the keyframe video backend: {', '.join(ignored)}"]


class _MakeArgs(_CompatArgs):
    prompt: str = Field(min_length=1, max_length=8000, description="What the video shows.")
    videoModel: str = Field(
        DEFAULT_VIDEO_MODEL, description="Video model id (e.g. ltx25, wan22); see the catalog."
    )
    duration: float = Field(5, ge=2, le=30, description="Length in seconds.")
    width: int | None = Field(None, ge=64, le=MAX_SIDE, description="Output width in px.")
    height: int | None = Field(None, ge=64, le=MAX_SIDE, description="Output height in px.")
    targetResolution: int | None = Field(
        None, ge=144, le=1080, description="Short side in px when width/height are absent."
    )
    aspectRatio: AspectRatio = Field(None, description="e.g. 16:9, 9:16, 1:1.")
    ratio: WanRatio | None = Field(None, description="Aspect ratio, Wan-style spelling.")
    numberOfVariations: int = Field(
        1, ge=1, le=MAX_VARIATIONS, description="How many videos to make (at most 4 here)."
    )
    seed: int = Field(-1, ge=-1, le=2**32 - 1, description="-1 picks a random seed.")
    negativePrompt: str | None = Field(None, description="What to keep out (recorded).")
    generateAudio: bool = Field(False, description="Add a soft generated ambient soundtrack.")
    returnLastFrame: bool = Field(
        False, description="Also store each video's last frame as an image (lastFrameUrl)."
    )
    outputFormat: Literal["mp4", "mov"] = Field("mp4", description="Container; MP4 is made.")

    def requested_ratio(self) -> float | None:
        if self.aspectRatio:
            return _ratio_value(self.aspectRatio)
        if self.ratio and self.ratio != "adaptive":
            return _ratio_value(self.ratio)
        return None

    def seeds(self) -> list[int]:
        base = self.seed if self.seed >= 0 else secrets.randbelow(2**31)
        return [(base + i) % 2**32 for i in range(self.numberOfVariations)]

    def common_warnings(self) -> list[str]:
        warnings = self.compat_warnings()
        if self.outputFormat == "mov":
            warnings.append("outputFormat mov is not offered here; the video is an MP4")
        return warnings


class GenerateVideoArgs(_MakeArgs):
    referenceImageIndices: list[int] | None = Field(
        None, max_length=16, description="Images to use as keyframes, in order."
    )
    referenceVideoIndices: list[int] | None = Field(
        None, max_length=10, description="Accepted; reference videos are not used here."
    )
    referenceAudioIndices: list[int] | None = Field(
        None, max_length=10, description="The first one becomes the soundtrack."
    )
    keyframes: list[KeyframeRef] | None = Field(
        None, max_length=8, description="Images to pass through, ordered by atSeconds."
    )


class AnimatePhotoArgs(_MakeArgs):
    sourceImageIndex: int | None = Field(None, description="The photo (index convention).")
    sourceImageIndices: list[int] | None = Field(
        None, min_length=1, max_length=16, description="Fan-out: one clip per photo."
    )
    prompts: list[str] | None = Field(
        None, min_length=1, max_length=16, description="One prompt per photo in a fan-out."
    )
    frameRole: Literal["start", "end", "both"] = Field(
        "start", description="Whether the photo opens, closes, or opens and closes the clip."
    )
    endImageIndex: int | None = Field(None, description="Image the clip ends on.")
    endImageIndices: list[int] | None = Field(
        None, min_length=1, max_length=16, description="Per-photo end images (fan-out)."
    )
    keyframes: list[KeyframeRef] | None = Field(
        None, max_length=8, description="Images to pass through between start and end."
    )
    stitch: bool = Field(True, description="Fan-out: join the clips into one video.")

    @model_validator(mode="after")
    def _lists_match(self) -> AnimatePhotoArgs:
        count = len(self.sourceImageIndices or [None])
        if self.endImageIndices is not None and len(self.endImageIndices) != count:
            raise ValueError("endImageIndices needs one entry per source image")
        if self.prompts is not None and len(self.prompts) not in (1, count):
            raise ValueError("prompts needs one entry per source image")
        return self


class StitchTransition(ToolArgs):
    type: Literal["fade", "dissolve", "wipeleft", "wiperight", "slideup", "slidedown"] = "fade"
    durationSeconds: float = Field(0.5, ge=0.2, le=2, description="Overlap in seconds.")


class StitchVideoArgs(ToolArgs):
    videoIndices: list[int] = Field(
        min_length=2, max_length=32, description="Videos in play order (index convention)."
    )
    audioIndex: int | None = Field(
        None, description="Soundtrack for the whole result: >=0 generated, <0 uploaded audio."
    )
    transition: StitchTransition | None = Field(None, description="Omit for hard cuts.")

    @field_validator("transition", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # A bare type name ("fade") is read as that transition with the default length.
        return {"type": value} if isinstance(value, str) else value


class ExtendVideoArgs(ToolArgs):
    videoIndex: int = Field(-1, description="-1: the latest video, else the first upload.")
    duration: float = Field(5, ge=1, le=20, description="Seconds to add.")
    prompt: str | None = Field(None, max_length=8000, description="Where the shot goes next.")
    videoModel: str = Field(DEFAULT_VIDEO_MODEL, description="Video model id.")
    seed: int = Field(-1, ge=-1, le=2**32 - 1)
    generateAudio: bool = Field(False, description="Ambient tone under the added part.")


class ReplaceSegmentArgs(ToolArgs):
    videoIndex: int = Field(-1, description="-1: the latest video, else the first upload.")
    startSeconds: float = Field(ge=0, description="Start of the window to regenerate.")
    endSeconds: float = Field(gt=0, description="End of the window.")
    prompt: str = Field(min_length=1, max_length=8000, description="What the window shows.")
    videoModel: str = Field(DEFAULT_VIDEO_MODEL, description="Video model id.")
    seed: int = Field(-1, ge=-1, le=2**32 - 1)

    @model_validator(mode="after")
    def _ordered(self) -> ReplaceSegmentArgs:
        if self.endSeconds <= self.startSeconds:
            raise ValueError("endSeconds must be after startSeconds")
        return self


Position = Literal[
    "top-left", "top", "top-right", "center", "bottom-left", "bottom", "bottom-right"
]


class Overlay(ToolArgs):
    kind: Literal["text", "image"]
    text: str | None = Field(None, max_length=500, description="For kind=text.")
    imageIndex: int | None = Field(None, description="For kind=image (index convention).")
    position: Position | None = Field(
        None, description="Default: bottom for text, top-right for images."
    )
    start: float | None = Field(None, ge=0, description="Seconds; default the beginning.")
    end: float | None = Field(None, gt=0, description="Seconds; default the end.")
    opacity: float = Field(1.0, ge=0, le=1)
    fontSize: int | None = Field(None, ge=8, le=300, description="Text height in px.")
    color: Color = Field(None, description="Text colour (name or #RRGGBB).")

    @model_validator(mode="after")
    def _complete(self) -> Overlay:
        if self.kind == "text" and not (self.text or "").strip():
            raise ValueError("a text overlay needs text")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class OverlayVideoArgs(ToolArgs):
    sourceVideoIndex: int | None = Field(None, description="The video (index convention).")
    overlays: list[Overlay] = Field(min_length=1, max_length=16)


class SubtitleCue(ToolArgs):
    start: float = Field(ge=0, description="Seconds.")
    end: float = Field(gt=0, description="Seconds.")
    text: str = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _ordered(self) -> SubtitleCue:
        if self.end <= self.start:
            raise ValueError("a cue must end after it starts")
        return self


class SubtitleStyle(ToolArgs):
    fontSize: int | None = Field(None, ge=8, le=200, description="Text height in px.")
    color: Color = Field(None, description="Text colour (name or #RRGGBB).")
    position: Literal["bottom", "top"] = "bottom"


class AddSubtitlesArgs(ToolArgs):
    sourceVideoIndex: int | None = Field(None, description="The video (index convention).")
    cues: list[SubtitleCue] | None = Field(None, min_length=1, max_length=2000)
    srt: str | None = Field(None, min_length=1, max_length=500_000, description="SRT text.")
    style: SubtitleStyle | None = None

    @model_validator(mode="after")
    def _one_source(self) -> AddSubtitlesArgs:
        if (self.cues is None) == (self.srt is None):
            raise ValueError("give either cues or srt")
        return self


class UpscaleVideoArgs(ToolArgs):
    videoIndex: int | None = Field(None, description="The video (index convention).")
    sourceVideoIndex: int | None = Field(None, description="Same as videoIndex.")
    targetResolution: Literal[1080, 1440] = Field(1080, description="Short side in px.")


# ---------------------------------------------------------------------------------------------
# Helpers


def _backend(name: str) -> str:
    return resolve_model(VIDEO_MODELS, name, "video")


def _plan_size(
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
    return video.even(w, 32), video.even(h, 32), warnings


def _work_size(width: int, height: int) -> tuple[int, int]:
    """Keyframes are drawn larger than the video so the camera moves stay sharp."""
    factor = min(2.0, 3840 / max(width, height))
    return round(width * factor), round(height * factor)


def _stable_seed(*parts: Any) -> int:
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


def _camera_hint(prompt: str) -> str | None:
    """A camera move the prompt asks for, if it names one."""
    for pattern, move in _HINTS:
        if re.search(pattern, prompt, re.IGNORECASE):
            return move
    return None


def _keyframe_count(duration: float) -> int:
    """About one keyframe per four seconds, two to eight."""
    return max(1, min(8, round(duration / 4 + 0.49)))


@dataclass
class _Frame:
    """A keyframe to prepare: drawn from a prompt, or taken from an image file."""

    prompt: str | None = None
    seed: int = 0
    path: Path | None = None
    blend_with: Path | None = None


def _prepare_frame(frame: _Frame, width: int, height: int, out: Path) -> None:
    work = _work_size(width, height)
    if frame.path is not None:
        with Image.open(frame.path) as image:
            picture = video.cover(ImageOps.exif_transpose(image), *work)
    else:
        assert frame.prompt is not None
        scale = min(1.0, 1280 / max(width, height))
        drawn = render_procedural(
            frame.prompt, frame.seed, video.even(width * scale), video.even(height * scale)
        )
        picture = drawn.convert("RGB").resize(work, Image.Resampling.BICUBIC)
        if frame.blend_with is not None:
            with Image.open(frame.blend_with) as base:
                picture = Image.blend(video.cover(base, *work), picture, 0.5)
    picture.save(out, "PNG", compress_level=1)


async def _prepare_frames(
    frames: Sequence[_Frame], width: int, height: int, workdir: Path, tag: str
) -> list[Path]:
    paths = [workdir / f"{tag}-key{i}.png" for i in range(len(frames))]
    await asyncio.gather(
        *(
            asyncio.to_thread(_prepare_frame, frame, width, height, path)
            for frame, path in zip(frames, paths, strict=True)
        )
    )
    return paths


def _soundtrack(
    ctx: ToolContext, generate: bool, seed: int, audio: AssetRecord | None
) -> tuple[video.Soundtrack, str]:
    if audio is not None:
        return video.Soundtrack("file", ctx.store.path_of(audio)), f"audio asset {audio.id}"
    if generate:
        return video.Soundtrack.ambient_for(seed), "generated ambient tone (not a sound model)"
    return video.Soundtrack(), "silent"


async def _store_video(
    ctx: ToolContext, path: Path, tool: str, backend: str, meta: dict[str, Any]
) -> AssetRecord:
    return await ctx.store.put_file(ctx.owner, path, tool=tool, backend=backend, meta=meta)


async def _last_frames(
    ctx: ToolContext, clips: Sequence[Path], tool: str, workdir: Path
) -> list[AssetRecord]:
    """The last frame of each finished clip, stored as a PNG image asset."""
    records = []
    for i, clip in enumerate(clips):
        frame = await video.extract_frame(clip, workdir / f"last-frame-{i}.png")
        records.append(
            await ctx.store.put_file(
                ctx.owner, frame, tool=tool, backend=FFMPEG, meta={"role": "last frame"}
            )
        )
    return records


def _last_frame_extra(ctx: ToolContext, frames: Sequence[AssetRecord]) -> dict[str, Any]:
    if not frames:
        return {}
    urls = [ctx.store.url(record) for record in frames]
    return {"lastFrameUrl": urls[0], "lastFrameUrls": urls}


def _fraction(done: int, total: int, within: float) -> float:
    return min(0.95, (done + within) / total)


async def _image_file(ctx: ToolContext, record: AssetRecord, out: Path) -> Path:
    """A PNG copy of an image asset, upright (EXIF), with alpha kept."""

    def convert() -> None:
        with Image.open(ctx.store.path_of(record)) as image:
            ImageOps.exif_transpose(image).convert("RGBA").save(out, "PNG", compress_level=1)

    await asyncio.to_thread(convert)
    return out


# ---------------------------------------------------------------------------------------------
# Tools


async def generate_video(args: GenerateVideoArgs, ctx: ToolContext) -> ToolOutput:
    backend = _backend(args.videoModel)
    width, height, warnings = _plan_size(
        args.width, args.height, args.requested_ratio(), args.targetResolution, 16 / 9
    )
    warnings += args.common_warnings()
    references = [
        ctx.media.resolve("image", index, "referenceImageIndices")
        for index in args.referenceImageIndices or []
    ]
    for keyframe in sorted(args.keyframes or [], key=lambda k: k.atSeconds):
        references.append(ctx.media.resolve("image", keyframe.imageIndex, "keyframes.imageIndex"))
    if args.keyframes:
        warnings.append("keyframes are shown in atSeconds order, spread evenly over the video")
    audio = None
    if args.referenceAudioIndices:
        audio = ctx.media.resolve("audio", args.referenceAudioIndices[0], "referenceAudioIndices")
    if args.referenceVideoIndices:
        for index in args.referenceVideoIndices:
            ctx.media.resolve("video", index, "referenceVideoIndices")
        warnings.append("reference videos are not used by the keyframe video backend")
    hint = _camera_hint(args.prompt)
    seeds = args.seeds()
    scratch = ctx.store.scratch_dir()
    try:
        clips: list[Path] = []
        metas: list[dict[str, Any]] = []
        for v, seed in enumerate(seeds):
            ctx.progress(_fraction(v, len(seeds), 0.05), "drawing keyframes")
            if references:
                plan = [_Frame(path=ctx.store.path_of(r)) for r in references[:8]]
            else:
                plan = [
                    _Frame(prompt=args.prompt, seed=_stable_seed(seed, k))
                    for k in range(_keyframe_count(args.duration))
                ]
            keyframes = await _prepare_frames(plan, width, height, scratch, f"v{v}")
            rng = random.Random(_stable_seed(args.prompt, seed, "motion"))
            motions = [
                video.pick_motion(rng, start_full=bool(references) and k == 0, prefer=hint)
                for k in range(len(keyframes))
            ]
            soundtrack, sound_note = _soundtrack(ctx, args.generateAudio, seed, audio)
            ctx.progress(_fraction(v, len(seeds), 0.3), "animating and encoding")
            out = scratch / f"video-{v}.mp4"
            await video.keyframe_clip(
                keyframes,
                motions,
                out,
                width=width,
                height=height,
                duration=args.duration,
                soundtrack=soundtrack,
            )
            clips.append(out)
            meta: dict[str, Any] = {
                "renderer": RENDERER,
                "keyframe_renderer": "reference images" if references else RENDERER_NOTE,
                "prompt": args.prompt,
                "requested_model": args.videoModel,
                "seed": seed,
                "keyframes": len(keyframes),
                "motions": [m.name for m in motions],
                "audio": sound_note,
            }
            if args.negativePrompt:
                meta["negative_prompt"] = args.negativePrompt
            if references:
                meta["reference_images"] = [r.id for r in references[:8]]
            metas.append(meta)
        ctx.progress(0.95, "storing")
        frames = []
        if args.returnLastFrame:
            frames = await _last_frames(ctx, clips, "generate_video", scratch)
        videos = [
            await _store_video(ctx, clip, "generate_video", backend, meta)
            for clip, meta in zip(clips, metas, strict=True)
        ]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if len(references) > 8:
        warnings.append("only the first 8 reference images were used")
    return ToolOutput(
        [*videos, *frames],
        model=args.videoModel,
        backend=backend,
        warnings=warnings,
        extra={"prompt": args.prompt, **_last_frame_extra(ctx, frames)},
    )


async def animate_photo(args: AnimatePhotoArgs, ctx: ToolContext) -> ToolOutput:
    if args.videoModel.lower().startswith("seedance"):
        raise ToolError(
            "PARAMETER_INVALID",
            "animate_photo does not take Seedance models; use e.g. ltx25, wan22 or minimax-h3-i2v",
        )
    backend = _backend(args.videoModel)
    warnings = args.common_warnings()
    fan_out = args.sourceImageIndices is not None
    argument = "sourceImageIndices" if fan_out else "sourceImageIndex"
    sources = [
        ctx.media.resolve("image", index, argument)
        for index in (args.sourceImageIndices or [args.sourceImageIndex])
    ]
    if args.endImageIndices is not None:
        ends = [ctx.media.resolve("image", i, "endImageIndices") for i in args.endImageIndices]
    else:
        ends = [None] * len(sources)
        if args.endImageIndex is not None:
            # With several photos a single end image closes the last clip (and so the video).
            ends[-1] = ctx.media.resolve("image", args.endImageIndex, "endImageIndex")
    middle = [
        ctx.media.resolve("image", k.imageIndex, "keyframes.imageIndex")
        for k in sorted(args.keyframes or [], key=lambda k: k.atSeconds)
    ]
    if args.negativePrompt:
        warnings.append("negativePrompt is recorded but has no effect on a camera move")
    first = sources[0]
    source_ratio = (first.width or 16) / (first.height or 9)
    width, height, size_warnings = _plan_size(
        args.width, args.height, args.requested_ratio(), args.targetResolution, source_ratio
    )
    warnings += size_warnings
    prompts = args.prompts or [args.prompt]
    seeds = args.seeds()
    jobs = len(seeds) * len(sources)
    scratch = ctx.store.scratch_dir()
    try:
        outputs: list[tuple[Path, dict[str, Any]]] = []
        clip_records: list[AssetRecord] = []
        for v, seed in enumerate(seeds):
            clips: list[tuple[Path, dict[str, Any]]] = []
            for i, source in enumerate(sources):
                done = v * len(sources) + i
                prompt = prompts[i] if len(prompts) > 1 else prompts[0]
                ctx.progress(_fraction(done, jobs, 0.05), f"preparing photo {i + 1}")
                end = ends[i]
                role = args.frameRole
                if end is not None and role != "start":
                    warnings.append("with an end image the photo opens the clip (frameRole=start)")
                    role = "start"
                sequence = [source, *(middle if len(sources) == 1 else []), end]
                records = [r for r in sequence if r is not None]
                if role == "end":
                    records = [*records[1:], source]
                elif role == "both" and len(records) > 1:
                    records = [*records, source]
                plan = [_Frame(path=ctx.store.path_of(r)) for r in records]
                keyframes = await _prepare_frames(plan, width, height, scratch, f"v{v}c{i}")
                rng = random.Random(_stable_seed(prompt, seed, i, "motion"))
                hint = _camera_hint(prompt)
                count = len(keyframes)
                opens = role in ("start", "both")
                closes = role in ("end", "both") or end is not None
                motions = [
                    video.pick_motion(
                        rng,
                        start_full=opens and k == 0,
                        end_full=closes and k == count - 1,
                        prefer=hint,
                    )
                    for k in range(count)
                ]
                soundtrack, sound_note = _soundtrack(ctx, args.generateAudio, seed + i, None)
                ctx.progress(_fraction(done, jobs, 0.3), f"animating photo {i + 1}")
                out = scratch / f"clip-{v}-{i}.mp4"
                await video.keyframe_clip(
                    keyframes,
                    motions,
                    out,
                    width=width,
                    height=height,
                    duration=args.duration,
                    soundtrack=soundtrack,
                )
                meta = {
                    "renderer": ANIMATOR,
                    "prompt": prompt,
                    "requested_model": args.videoModel,
                    "seed": seed,
                    "source_image": source.id,
                    "frame_role": role,
                    "motions": [m.name for m in motions],
                    "audio": sound_note,
                }
                if end is not None:
                    meta["end_image"] = end.id
                clips.append((out, meta))
            if len(clips) > 1 and args.stitch:
                ctx.progress(_fraction(v * len(sources) + len(sources) - 1, jobs, 0.8), "stitching")
                joined = scratch / f"video-{v}.mp4"
                await video.join([path for path, _ in clips], joined, width=width, height=height)
                for path, meta in clips:
                    clip_records.append(
                        await _store_video(ctx, path, "animate_photo", backend, meta)
                    )
                outputs.append(
                    (
                        joined,
                        {
                            "renderer": ANIMATOR,
                            "prompt": args.prompt,
                            "requested_model": args.videoModel,
                            "seed": seed,
                            "clips": [r.id for r in clip_records[-len(clips) :]],
                        },
                    )
                )
            else:
                outputs += clips
        ctx.progress(0.95, "storing")
        frames = (
            await _last_frames(ctx, [path for path, _ in outputs], "animate_photo", scratch)
            if args.returnLastFrame
            else []
        )
        videos = [await _store_video(ctx, p, "animate_photo", backend, m) for p, m in outputs]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    extra: dict[str, Any] = {"prompt": args.prompt, **_last_frame_extra(ctx, frames)}
    if clip_records:
        extra["clipUrls"] = [ctx.store.url(r) for r in clip_records]
    return ToolOutput(
        [*videos, *frames],
        model=args.videoModel,
        backend=backend,
        warnings=list(dict.fromkeys(warnings)),
        extra=extra,
    )


async def stitch_video(args: StitchVideoArgs, ctx: ToolContext) -> ToolOutput:
    records = [ctx.media.resolve("video", i, "videoIndices") for i in args.videoIndices]
    audio = None
    if args.audioIndex is not None:
        audio = ctx.media.resolve("audio", args.audioIndex, "audioIndex")
    first = await video.inspect(ctx.store.path_of(records[0]))
    width, height = video.even(first.width), video.even(first.height)
    fps = video.pick_fps(first.fps)
    transition = args.transition
    warnings: list[str] = []
    scratch = ctx.store.scratch_dir()
    try:
        ctx.progress(0.1, "joining clips")
        out = scratch / "stitched.mp4"
        soundtrack = None if audio is None else video.Soundtrack("file", ctx.store.path_of(audio))
        _, used = await video.join(
            [ctx.store.path_of(r) for r in records],
            out,
            width=width,
            height=height,
            fps=fps,
            transition=transition.type if transition else None,
            transition_s=transition.durationSeconds if transition else 0.5,
            soundtrack=soundtrack,
        )
        if transition and used + 1e-6 < transition.durationSeconds - 0.5 / float(fps):
            warnings.append(f"the transition was shortened to {used:.2f}s to fit a short clip")
        ctx.progress(0.9, "storing")
        meta = {
            "operation": "stitch",
            "clips": [r.id for r in records],
            "transition": transition.model_dump() if transition else None,
            "audio": audio.id if audio else "clip audio",
        }
        record = await _store_video(ctx, out, "stitch_video", FFMPEG, meta)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ToolOutput(
        [record],
        model=FFMPEG,
        backend=FFMPEG,
        warnings=warnings,
        extra={"clipUrls": [ctx.store.url(r) for r in records]},
    )


async def extend_video(args: ExtendVideoArgs, ctx: ToolContext) -> ToolOutput:
    backend = _backend(args.videoModel)
    source = ctx.media.latest_video_or_first_upload(args.videoIndex, "videoIndex")
    path = ctx.store.path_of(source)
    facts = await video.inspect(path)
    width, height = video.even(facts.width), video.even(facts.height)
    fps = video.pick_fps(facts.fps)
    seed = args.seed if args.seed >= 0 else secrets.randbelow(2**31)
    scratch = ctx.store.scratch_dir()
    try:
        ctx.progress(0.1, "reading the last frame")
        last = await video.extract_frame(path, scratch / "last.png")
        plan = [_Frame(path=last)]
        if args.prompt and args.duration >= 3:
            plan.append(_Frame(prompt=args.prompt, seed=_stable_seed(seed, 1), blend_with=last))
        keyframes = await _prepare_frames(plan, width, height, scratch, "ext")
        rng = random.Random(_stable_seed(args.prompt, seed, "motion"))
        hint = _camera_hint(args.prompt or "")
        motions = [
            video.pick_motion(rng, start_full=k == 0, prefer=hint) for k in range(len(keyframes))
        ]
        soundtrack, sound_note = _soundtrack(ctx, args.generateAudio, seed, None)
        ctx.progress(0.3, "animating the continuation")
        added = scratch / "added.mp4"
        await video.keyframe_clip(
            keyframes,
            motions,
            added,
            width=width,
            height=height,
            duration=args.duration,
            fps=fps,
            soundtrack=soundtrack,
        )
        ctx.progress(0.7, "appending")
        out = scratch / "extended.mp4"
        await video.join([path, added], out, width=width, height=height, fps=fps)
        ctx.progress(0.9, "storing")
        meta = {
            "renderer": "last frame + Ken Burns camera move"
            + (" dissolving toward a procedural keyframe" if len(plan) > 1 else "")
            + " + ffmpeg",
            "source": source.id,
            "added_seconds": args.duration,
            "prompt": args.prompt,
            "requested_model": args.videoModel,
            "seed": seed,
            "motions": [m.name for m in motions],
            "added_audio": sound_note,
        }
        record = await _store_video(ctx, out, "extend_video", backend, meta)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ToolOutput([record], model=args.videoModel, backend=backend)


async def replace_video_segment(args: ReplaceSegmentArgs, ctx: ToolContext) -> ToolOutput:
    backend = _backend(args.videoModel)
    source = ctx.media.latest_video_or_first_upload(args.videoIndex, "videoIndex")
    path = ctx.store.path_of(source)
    facts = await video.inspect(path)
    if args.startSeconds >= facts.duration:
        raise ToolError(
            "PARAMETER_INVALID",
            f"startSeconds is past the end of the video ({facts.duration:.2f}s)",
        )
    end = min(args.endSeconds, facts.duration)
    if end - args.startSeconds < 0.2:
        raise ToolError("PARAMETER_INVALID", "the window must be at least 0.2 s long")
    warnings = []
    if args.endSeconds > facts.duration + 0.05:
        warnings.append(f"endSeconds was clipped to the video's end ({facts.duration:.2f}s)")
    width, height = video.even(facts.width), video.even(facts.height)
    fps = video.pick_fps(facts.fps)
    seed = args.seed if args.seed >= 0 else secrets.randbelow(2**31)
    length = end - args.startSeconds
    scratch = ctx.store.scratch_dir()
    try:
        ctx.progress(0.1, "drawing keyframes")
        count = 1 if length < 3 else min(4, _keyframe_count(length))
        plan = [_Frame(prompt=args.prompt, seed=_stable_seed(seed, k)) for k in range(count)]
        keyframes = await _prepare_frames(plan, width, height, scratch, "seg")
        rng = random.Random(_stable_seed(args.prompt, seed, "motion"))
        hint = _camera_hint(args.prompt)
        motions = [video.pick_motion(rng, prefer=hint) for _ in keyframes]
        ctx.progress(0.3, "rendering the new segment")
        segment = scratch / "segment.mp4"
        await video.keyframe_clip(
            keyframes, motions, segment, width=width, height=height, duration=length, fps=fps
        )
        ctx.progress(0.6, "splicing")
        out = scratch / "spliced.mp4"
        await video.splice(
            path,
            segment,
            out,
            start=args.startSeconds,
            end=end,
            width=width,
            height=height,
            fps=fps,
        )
        ctx.progress(0.9, "storing")
        meta = {
            "renderer": RENDERER,
            "keyframe_renderer": RENDERER_NOTE,
            "source": source.id,
            "window": [args.startSeconds, end],
            "prompt": args.prompt,
            "requested_model": args.videoModel,
            "seed": seed,
            "audio": "the source's audio, unchanged",
        }
        record = await _store_video(ctx, out, "replace_video_segment", backend, meta)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ToolOutput([record], model=args.videoModel, backend=backend, warnings=warnings)


async def overlay_video(args: OverlayVideoArgs, ctx: ToolContext) -> ToolOutput:
    source = ctx.media.resolve("video", args.sourceVideoIndex, "sourceVideoIndex")
    warnings = []
    duration = source.duration_s or 0
    scratch = ctx.store.scratch_dir()
    try:
        layers: list[video.TextLayer | video.ImageLayer] = []
        described = []
        for i, overlay in enumerate(args.overlays):
            if duration and overlay.start is not None and overlay.start >= duration:
                warnings.append(f"overlay {i} starts after the video ends and will not show")
            if overlay.kind == "text":
                layers.append(
                    video.TextLayer(
                        text=overlay.text or "",
                        position=overlay.position or "bottom",
                        start=overlay.start,
                        end=overlay.end,
                        opacity=overlay.opacity,
                        font_px=overlay.fontSize,
                        color=overlay.color or "white",
                    )
                )
                described.append({"kind": "text", "text": overlay.text})
            else:
                image = ctx.media.resolve("image", overlay.imageIndex, f"overlays[{i}].imageIndex")
                png = await _image_file(ctx, image, scratch / f"overlay-{i}.png")
                layers.append(
                    video.ImageLayer(
                        path=png,
                        position=overlay.position or "top-right",
                        start=overlay.start,
                        end=overlay.end,
                        opacity=overlay.opacity,
                    )
                )
                described.append({"kind": "image", "image": image.id})
        ctx.progress(0.2, "drawing overlays")
        out = scratch / "overlaid.mp4"
        await video.burn_layers(ctx.store.path_of(source), out, layers, scratch)
        ctx.progress(0.9, "storing")
        meta = {"operation": "overlay", "source": source.id, "overlays": described}
        record = await _store_video(ctx, out, "overlay_video", FFMPEG, meta)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ToolOutput([record], model=FFMPEG, backend=FFMPEG, warnings=warnings)


async def add_subtitles(args: AddSubtitlesArgs, ctx: ToolContext) -> ToolOutput:
    source = ctx.media.resolve("video", args.sourceVideoIndex, "sourceVideoIndex")
    if args.cues is not None:
        cues = [video.Cue(c.start, c.end, video.plain_cue_text(c.text)) for c in args.cues]
    else:
        try:
            cues = video.parse_srt(args.srt or "")
        except ValueError as exc:
            raise ToolError("PARAMETER_INVALID", f"srt: {exc}") from exc
    warnings = []
    duration = source.duration_s or 0
    if duration and all(c.start >= duration for c in cues):
        warnings.append("every cue starts after the video ends; nothing will show")
    style = args.style or SubtitleStyle()
    scratch = ctx.store.scratch_dir()
    try:
        ctx.progress(0.2, "rendering subtitles")
        out = scratch / "subtitled.mp4"
        await video.burn_subtitles(
            ctx.store.path_of(source),
            out,
            cues,
            scratch,
            font_px=style.fontSize,
            color=style.color or "white",
            position=style.position,
        )
        ctx.progress(0.9, "storing")
        meta = {
            "operation": "subtitles",
            "source": source.id,
            "cues": len(cues),
            "style": style.model_dump(),
        }
        record = await _store_video(ctx, out, "add_subtitles", FFMPEG, meta)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ToolOutput(
        [record], model=FFMPEG, backend=FFMPEG, warnings=warnings, extra={"cueCount": len(cues)}
    )


async def upscale_video(args: UpscaleVideoArgs, ctx: ToolContext) -> ToolOutput:
    if (
        args.videoIndex is not None
        and args.sourceVideoIndex is not None
        and args.videoIndex != args.sourceVideoIndex
    ):
        raise ToolError("PARAMETER_INVALID", "videoIndex and sourceVideoIndex disagree")
    index = args.sourceVideoIndex if args.sourceVideoIndex is not None else args.videoIndex
    source = ctx.media.resolve("video", index, "videoIndex")
    path = ctx.store.path_of(source)
    facts = await video.inspect(path)
    short, long = sorted((facts.width, facts.height))
    target = args.targetResolution
    new_long = min(4096, long * target / short)
    new_short = new_long * short / long
    warnings = []
    if new_long < long * target / short:
        warnings.append("the long side was capped at 4096 px")
    if short >= target:
        warnings.append(f"the video is already {short} px on its short side; it was resampled")
    if facts.width >= facts.height:
        width, height = video.even(new_long), video.even(new_short)
    else:
        width, height = video.even(new_short), video.even(new_long)
    scratch = ctx.store.scratch_dir()
    try:
        ctx.progress(0.1, "upscaling")
        out = scratch / "upscaled.mp4"
        await video.rescale(path, out, width=width, height=height)
        ctx.progress(0.9, "storing")
        meta = {
            "operation": "upscale",
            "source": source.id,
            "resampler": "lanczos",
            "from": [facts.width, facts.height],
        }
        record = await _store_video(ctx, out, "upscale_video", FFMPEG, meta)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ToolOutput([record], model="lanczos", backend=FFMPEG, warnings=warnings)


# ---------------------------------------------------------------------------------------------
# Costs (capacity units: one unit is about one second of 720p video made from scratch)


def _area_factor(width: int | None, height: int | None) -> float:
    if width and height:
        return max(0.25, width * height / (1280 * 720))
    return 1.0


def _make_cost(args: _MakeArgs) -> float:
    clips = len(getattr(args, "sourceImageIndices", None) or [None])
    factor = _area_factor(args.width, args.height)
    if args.targetResolution and not (args.width and args.height):
        factor = max(0.25, (args.targetResolution / 720) ** 2)
    return round(args.duration * args.numberOfVariations * clips * factor, 2)


TOOLS = [
    Tool(
        "generate_video",
        "Make a video from a text prompt (2-30 s). Keyframes are drawn from the prompt (or taken "
        "from referenceImageIndices) and animated with camera moves and dissolves. Up to 4 "
        "variations; set returnLastFrame to also get each video's final frame as an image. "
        "Results are added to the video list.",
        GenerateVideoArgs,
        generate_video,
        cost=_make_cost,
    ),
    Tool(
        "animate_photo",
        "Bring a photo to life with a camera move (zoom/pan), optionally ending on another "
        "image. Give sourceImageIndices for one clip per photo, joined into one video by "
        "default (clip URLs in clipUrls). Seedance models are not accepted here.",
        AnimatePhotoArgs,
        animate_photo,
        cost=_make_cost,
    ),
    Tool(
        "stitch_video",
        "Join two or more videos into one, with hard cuts or a transition (fade, dissolve, "
        "wipes, slides), optionally under one soundtrack. Clips are fitted to the first "
        "clip's size.",
        StitchVideoArgs,
        stitch_video,
        cost=lambda args: round(1 + 0.25 * len(args.videoIndices), 2),
    ),
    Tool(
        "extend_video",
        "Add seconds to the end of a video, continuing from its last frame with a camera move "
        "(and drifting toward the prompt when one is given).",
        ExtendVideoArgs,
        extend_video,
        cost=lambda args: round(args.duration + 1, 2),
    ),
    Tool(
        "replace_video_segment",
        "Regenerate the pictures between startSeconds and endSeconds from a prompt and splice "
        "them in; the length and the soundtrack stay the same.",
        ReplaceSegmentArgs,
        replace_video_segment,
        cost=lambda args: round(args.endSeconds - args.startSeconds + 1, 2),
    ),
    Tool(
        "overlay_video",
        "Burn text captions and/or images (logos) into a video at a position and for a time "
        "window, with optional opacity. The length stays the same.",
        OverlayVideoArgs,
        overlay_video,
        cost=lambda args: 1.0,
    ),
    Tool(
        "add_subtitles",
        "Burn subtitles into a video, from cues ({start, end, text} in seconds) or SRT text, "
        "with optional font size, colour and top/bottom position. The length stays the same.",
        AddSubtitlesArgs,
        add_subtitles,
        cost=lambda args: 1.0,
    ),
    Tool(
        "upscale_video",
        "Enlarge a video to 1080 or 1440 px on its short side (Lanczos resampling, no "
        "prompt). The length and sound stay the same.",
        UpscaleVideoArgs,
        upscale_video,
        cost=lambda args: 2.0 if args.targetResolution == 1080 else 3.0,
    ),
]
