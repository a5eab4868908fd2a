"""Video generation tools: `generate_video` (from a prompt or reference images) and
`animate_photo` (photos brought to life). The operator's video model (`tools/model_video.py`)
renders the calls whose videoModel it answers; every other call runs on the keyframe backend.

On the keyframe backend, still keyframes (drawn by the procedural image renderer from the
prompt, or taken from the caller's images) get Ken Burns camera moves and dissolve into each
other, encoded by ffmpeg; it is not a video diffusion model. Every artifact's metadata says
what ran. Outputs are
H.264 + AAC MP4 files; see `media/video/` and `tools/keyframes.py`.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from sogni_intelligence.media.image import RENDERER_NOTE
from sogni_intelligence.media.models import DEFAULT_VIDEO_MODEL
from sogni_intelligence.media.progress import spanning
from sogni_intelligence.media.store import AssetRecord, MadeFacts
from sogni_intelligence.media.video.clips import join
from sogni_intelligence.media.video.diffusion import VideoRequest
from sogni_intelligence.tools.base import (
    Tool,
    ToolArgs,
    ToolContext,
    ToolError,
    ToolOutput,
    tool_family,
)
from sogni_intelligence.tools.keyframes import (
    MAX_SIDE,
    RENDERER,
    SILENT_MODELS,
    VIDEO_MODEL_IDS,
    Frame,
    animate,
    fraction,
    keyframe_count,
    last_frame_extra,
    last_frames,
    pick_seed,
    plan_size,
    prepare_frames,
    soundtrack,
    stable_seed,
    store_video,
    video_backend,
)
from sogni_intelligence.tools.media_context import AudioIndex, ImageIndex, VideoIndex
from sogni_intelligence.tools.model_video import model_clip, spread, video_model_for

MAX_VARIATIONS = 4  # each variation is a full CPU encode; more would keep a request too long
ANIMATOR = "Ken Burns camera move over the photo + ffmpeg"
_RATIO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([:x/])\s*(\d+(?:\.\d+)?)\s*$", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# Argument pieces


def _read_ratio(value: str) -> tuple[float, tuple[int, int] | None]:
    """An aspect ratio ("16:9") or exact pixels ("1920x1080"): the ratio, and the pixels when
    the value names them (an `x` between two whole numbers of at least 64)."""
    match = _RATIO.match(value)
    if match is None or float(match.group(3)) == 0:
        raise ValueError("aspectRatio must look like 16:9 or 1920x1080")
    first, second = float(match.group(1)), float(match.group(3))
    ratio = first / second
    if not 0.25 <= ratio <= 4:
        raise ValueError("aspectRatio must be between 1:4 and 4:1")
    whole = first.is_integer() and second.is_integer() and min(first, second) >= 64
    exact = match.group(2).lower() == "x" and whole
    return ratio, (int(first), int(second)) if exact else None


def _check_ratio(value: str | None) -> str | None:
    if value is not None:
        _read_ratio(value)
    return value


AspectRatio = Annotated[str | None, AfterValidator(_check_ratio)]
WanRatio = Literal["adaptive", "16:9", "4:3", "1:1", "3:4", "9:16"]


class KeyframeRef(ToolArgs):
    imageIndex: ImageIndex = Field(description="Image to show (index convention).")
    atSeconds: float = Field(0, ge=0, le=60, description="When it should appear.")


class _CompatArgs(ToolArgs):
    """Options of the hosted models that this backend accepts and ignores (with a warning)."""

    rarely_needed = frozenset(
        {
            "expandPrompt",
            "skipPromptProcessing",
            "loras",
            "loraStrengths",
            "voicePersonaName",
            "watermark",
            "returnLastFrame",
        }
    )

    expandPrompt: bool | None = Field(None, description="Accepted; prompts are used as given.")
    skipPromptProcessing: bool | None = Field(
        None, description="Prompts are always used exactly as given here."
    )
    loras: list[str] | None = Field(
        None, min_length=1, max_length=8, description="Accepted; LoRAs are not supported here."
    )
    loraStrengths: list[float] | None = Field(
        None, min_length=1, max_length=8, description="Accepted with loras."
    )
    voicePersonaName: str | None = Field(None, description="Accepted; voices are not cloned.")
    watermark: bool | None = Field(None, description="Accepted; outputs are never watermarked.")

    def compat_warnings(self) -> list[str]:
        ignored = [
            name
            for name in ("expandPrompt", "loras", "loraStrengths", "voicePersonaName", "watermark")
            if getattr(self, name)
        ]
        if not ignored:
            return []
        return [f"ignored by the video backends here: {', '.join(ignored)}"]


class _MakeArgs(_CompatArgs):
    prompt: str = Field(min_length=1, max_length=8000, description="What the video shows.")
    videoModel: str = Field(
        DEFAULT_VIDEO_MODEL,
        description="Video model id; leave it out unless the user names a model.",
        json_schema_extra={"enum": VIDEO_MODEL_IDS},
    )
    duration: float = Field(5, ge=2, le=30, description="Length in seconds.")
    width: int | None = Field(
        None, ge=64, le=8192, description=f"Output width in px (capped to {MAX_SIDE})."
    )
    height: int | None = Field(
        None, ge=64, le=8192, description=f"Output height in px (capped to {MAX_SIDE})."
    )
    targetResolution: int | None = Field(
        None, ge=144, le=4320, description="Short side in px when width/height are absent."
    )
    aspectRatio: AspectRatio = Field(
        None, description="A ratio such as 16:9, or exact pixels such as 1280x720."
    )
    ratio: WanRatio | None = Field(None, description="Aspect ratio, Wan-style spelling.")
    numberOfVariations: int = Field(
        1, ge=1, le=16, description=f"How many videos to make (at most {MAX_VARIATIONS} here)."
    )
    seed: int = Field(
        -1, ge=-1, le=2**32 - 1, description="Same seed, same video; -1 picks a random seed."
    )
    negativePrompt: str | None = Field(
        None, description="Words kept out of the keyframes drawn from the prompt."
    )
    generateAudio: bool | None = Field(
        None,
        description="A soft generated ambient soundtrack (not a sound model); on unless false "
        "or the model is silent (wan22).",
    )
    returnLastFrame: bool = Field(
        False, description="Also store each video's last frame as an image (lastFrameUrl)."
    )
    outputFormat: Literal["mp4", "mov"] = Field("mp4", description="Container; MP4 is made.")

    def size(self, fallback_ratio: float) -> tuple[int, int, list[str]]:
        """Output size: width/height, else exact pixels in aspectRatio, else a ratio (from
        aspectRatio, ratio or the source) with targetResolution as the short side."""
        ratio, pixels = _read_ratio(self.aspectRatio) if self.aspectRatio else (None, None)
        if ratio is None and self.ratio and self.ratio != "adaptive":
            ratio, _ = _read_ratio(self.ratio)
        width, height = self.width, self.height
        if pixels and not (width or height):
            width, height = pixels
        return plan_size(width, height, ratio, self.targetResolution, fallback_ratio)

    def with_audio(self) -> bool:
        if self.generateAudio is not None:
            return self.generateAudio
        return self.videoModel not in SILENT_MODELS

    def seeds(self) -> list[int]:
        base = pick_seed(self.seed)
        return [(base + i) % 2**32 for i in range(min(self.numberOfVariations, MAX_VARIATIONS))]

    def common_warnings(self) -> list[str]:
        warnings = self.compat_warnings()
        if self.outputFormat == "mov":
            warnings.append("outputFormat mov is not offered here; the video is an MP4")
        if self.numberOfVariations > MAX_VARIATIONS:
            warnings.append(
                f"numberOfVariations was capped at {MAX_VARIATIONS} on the keyframe video backend"
            )
        return warnings


WebUrl = Annotated[str, Field(pattern=r"^https?://\S+$", max_length=4096)]


class GenerateVideoArgs(_MakeArgs):
    rarely_needed = frozenset({"referenceFileUrl", "referenceLinkUrl", "keyframes"})
    referenceImageIndices: list[ImageIndex] | None = Field(
        None, max_length=30, description="Images to use as keyframes, in order (8 at most)."
    )
    referenceVideoIndices: list[VideoIndex] | None = Field(
        None, max_length=10, description="Accepted; reference videos are not used here."
    )
    referenceAudioIndices: list[AudioIndex] | None = Field(
        None, max_length=10, description="The first one becomes the soundtrack."
    )
    referenceFileUrl: WebUrl | None = Field(
        None, description="A document to give context (Wan 3); accepted, not read here."
    )
    referenceLinkUrl: WebUrl | None = Field(
        None, description="A web page to give context (Wan 3); accepted, not read here."
    )
    keyframes: list[KeyframeRef] | None = Field(
        None, max_length=8, description="Images to pass through, ordered by atSeconds."
    )

    @model_validator(mode="after")
    def _one_context(self) -> GenerateVideoArgs:
        if self.referenceFileUrl and self.referenceLinkUrl:
            raise ValueError("give referenceFileUrl or referenceLinkUrl, not both")
        return self


class AnimatePhotoArgs(_MakeArgs):
    rarely_needed = frozenset(
        {"sourceImageIndices", "prompts", "frameRole", "endImageIndices", "keyframes", "stitch"}
    )
    sourceImageIndex: ImageIndex | None = Field(None, description="The photo (index convention).")
    sourceImageIndices: list[ImageIndex] | None = Field(
        None, min_length=1, max_length=16, description="Fan-out: one clip per photo."
    )
    prompts: list[str] | None = Field(
        None, min_length=1, max_length=16, description="One prompt per photo in a fan-out."
    )
    frameRole: Literal["start", "end", "both"] = Field(
        "start", description="Whether the photo opens, closes, or opens and closes the clip."
    )
    endImageIndex: ImageIndex | None = Field(None, description="Image the clip ends on.")
    endImageIndices: list[ImageIndex] | None = Field(
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


# ---------------------------------------------------------------------------------------------
# Tools


async def generate_video(args: GenerateVideoArgs, ctx: ToolContext) -> ToolOutput:
    model = video_model_for(ctx, args.videoModel)
    backend = model.backend if model else video_backend(args.videoModel)
    references = [
        ctx.media.resolve("image", index, "referenceImageIndices")
        for index in args.referenceImageIndices or []
    ]
    for keyframe in sorted(args.keyframes or [], key=lambda k: k.atSeconds):
        references.append(ctx.media.resolve("image", keyframe.imageIndex, "keyframes.imageIndex"))
    # Without a requested shape the video keeps the first reference image's.
    first = references[0] if references else None
    shape = (first.width or 16) / (first.height or 9) if first else 16 / 9
    width, height, warnings = args.size(shape)
    warnings += args.common_warnings()
    if args.keyframes:
        warnings.append("keyframes are shown in atSeconds order, spread evenly over the video")
    if args.referenceFileUrl or args.referenceLinkUrl:
        warnings.append("referenceFileUrl/referenceLinkUrl are not read by the keyframe backend")
    if args.negativePrompt and references and model is None:
        warnings.append("negativePrompt has no effect on keyframes taken from reference images")
    audio = None
    if args.referenceAudioIndices:
        audio = ctx.media.resolve("audio", args.referenceAudioIndices[0], "referenceAudioIndices")
    if args.referenceVideoIndices:
        for index in args.referenceVideoIndices:
            ctx.media.resolve("video", index, "referenceVideoIndices")
        warnings.append("reference videos are not used by the video backends here")
    seeds = args.seeds()
    scratch = ctx.store.scratch_dir()
    try:
        clips: list[Path] = []
        metas: list[dict[str, Any]] = []
        made: list[MadeFacts] = []
        for v, seed in enumerate(seeds):
            track, sound_note = await soundtrack(ctx, args.with_audio(), seed, audio)
            out = scratch / f"video-{v}.mp4"
            meta: dict[str, Any]
            if model is not None:
                images = [await ctx.store.local_path(r) for r in references[:8]]
                request = VideoRequest(
                    args.prompt,
                    width,
                    height,
                    args.duration,
                    seed,
                    args.negativePrompt,
                    spread(images, args.duration),
                )
                span = (fraction(v, len(seeds), 0.05), fraction(v, len(seeds), 0.9))
                facts, meta, more = await model_clip(ctx, model, request, out, track, span)
                warnings += more
            else:
                ctx.progress(fraction(v, len(seeds), 0.05), "drawing keyframes")
                if references:
                    plan = [Frame(path=await ctx.store.local_path(r)) for r in references[:8]]
                else:
                    plan = [
                        Frame(
                            prompt=args.prompt, seed=stable_seed(seed, k), avoid=args.negativePrompt
                        )
                        for k in range(keyframe_count(args.duration))
                    ]
                keyframes = await prepare_frames(plan, width, height, scratch, f"v{v}")
                ctx.progress(fraction(v, len(seeds), 0.3), "animating and encoding")
                motions, facts = await animate(
                    keyframes,
                    out,
                    size=(width, height),
                    duration=args.duration,
                    prompt=args.prompt,
                    motion_seed=stable_seed(args.prompt, seed, "motion"),
                    opens=bool(references),
                    track=track,
                    progress=spanning(
                        ctx.progress, fraction(v, len(seeds), 0.3), fraction(v, len(seeds), 0.9)
                    ),
                )
                meta = {
                    "renderer": RENDERER,
                    "keyframe_renderer": "reference images" if references else RENDERER_NOTE,
                    "keyframes": len(keyframes),
                    "motions": [m.name for m in motions],
                }
            clips.append(out)
            made.append(facts)
            meta |= {
                "prompt": args.prompt,
                "requested_model": args.videoModel,
                "seed": seed,
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
            frames = await last_frames(ctx, clips, "generate_video", scratch)
        videos = [
            await store_video(ctx, clip, "generate_video", backend, meta, facts)
            for clip, meta, facts in zip(clips, metas, made, strict=True)
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
        extra={"prompt": args.prompt, **last_frame_extra(ctx, frames)},
    )


async def animate_photo(args: AnimatePhotoArgs, ctx: ToolContext) -> ToolOutput:
    if args.videoModel.lower().startswith("seedance"):
        raise ToolError(
            "PARAMETER_INVALID",
            "animate_photo does not take Seedance models; use e.g. ltx25, wan22 or minimax-h3-i2v",
        )
    model = video_model_for(ctx, args.videoModel)
    backend = model.backend if model else video_backend(args.videoModel)
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
    if args.negativePrompt and model is None:
        warnings.append("negativePrompt is recorded but has no effect on a camera move")
    first = sources[0]
    width, height, size_warnings = args.size((first.width or 16) / (first.height or 9))
    warnings += size_warnings
    prompts = args.prompts or [args.prompt]
    seeds = args.seeds()
    jobs = len(seeds) * len(sources)
    scratch = ctx.store.scratch_dir()
    try:
        # Each output: its file, its metadata and, for a clip made here, its facts as encoded.
        outputs: list[tuple[Path, dict[str, Any], MadeFacts | None]] = []
        clip_records: list[AssetRecord] = []
        for v, seed in enumerate(seeds):
            clips: list[tuple[Path, dict[str, Any], MadeFacts | None]] = []
            for i, source in enumerate(sources):
                done = v * len(sources) + i
                prompt = prompts[i] if len(prompts) > 1 else prompts[0]
                ctx.progress(fraction(done, jobs, 0.05), f"preparing photo {i + 1}")
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
                images = [await ctx.store.local_path(r) for r in records]
                track, sound_note = await soundtrack(ctx, args.with_audio(), seed + i, None)
                out = scratch / f"clip-{v}-{i}.mp4"
                meta: dict[str, Any]
                if model is not None:
                    request = VideoRequest(
                        prompt,
                        width,
                        height,
                        args.duration,
                        (seed + i) % 2**32,
                        args.negativePrompt,
                        spread(images, args.duration, at_end=role == "end"),
                    )
                    span = (fraction(done, jobs, 0.05), fraction(done, jobs, 0.9))
                    facts, meta, more = await model_clip(ctx, model, request, out, track, span)
                    warnings += more
                else:
                    plan = [Frame(path=image) for image in images]
                    keyframes = await prepare_frames(plan, width, height, scratch, f"v{v}c{i}")
                    ctx.progress(fraction(done, jobs, 0.3), f"animating photo {i + 1}")
                    motions, facts = await animate(
                        keyframes,
                        out,
                        size=(width, height),
                        duration=args.duration,
                        prompt=prompt,
                        motion_seed=stable_seed(prompt, seed, i, "motion"),
                        opens=role in ("start", "both"),
                        closes=role in ("end", "both") or end is not None,
                        track=track,
                        progress=spanning(
                            ctx.progress, fraction(done, jobs, 0.3), fraction(done, jobs, 0.8)
                        ),
                    )
                    meta = {"renderer": ANIMATOR, "motions": [m.name for m in motions]}
                meta |= {
                    "prompt": prompt,
                    "requested_model": args.videoModel,
                    "seed": seed,
                    "source_image": source.id,
                    "frame_role": role,
                    "audio": sound_note,
                }
                if end is not None:
                    meta["end_image"] = end.id
                clips.append((out, meta, facts))
            if len(clips) > 1 and args.stitch:
                stitching = fraction(v * len(sources) + len(sources) - 1, jobs, 0.8)
                ctx.progress(stitching, "stitching")
                joined = scratch / f"video-{v}.mp4"
                await join(
                    [path for path, _, _ in clips],
                    joined,
                    width=width,
                    height=height,
                    progress=spanning(ctx.progress, stitching, fraction(v + 1, len(seeds), 0)),
                )
                for path, meta, facts in clips:
                    clip_records.append(
                        await store_video(ctx, path, "animate_photo", backend, meta, facts)
                    )
                outputs.append(
                    (
                        joined,
                        {
                            "renderer": clips[0][1]["renderer"],
                            "prompt": args.prompt,
                            "requested_model": args.videoModel,
                            "seed": seed,
                            "clips": [r.id for r in clip_records[-len(clips) :]],
                        },
                        None,
                    )
                )
            else:
                outputs += clips
        ctx.progress(0.95, "storing")
        frames = (
            await last_frames(ctx, [path for path, _, _ in outputs], "animate_photo", scratch)
            if args.returnLastFrame
            else []
        )
        videos = [await store_video(ctx, p, "animate_photo", backend, m, f) for p, m, f in outputs]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    extra: dict[str, Any] = {"prompt": args.prompt, **last_frame_extra(ctx, frames)}
    if clip_records:
        extra["clipUrls"] = [ctx.store.url(r) for r in clip_records]
    return ToolOutput(
        [*videos, *frames],
        model=args.videoModel,
        backend=backend,
        warnings=list(dict.fromkeys(warnings)),
        extra=extra,
    )


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
    videos = min(args.numberOfVariations, MAX_VARIATIONS)
    return round(args.duration * videos * clips * factor, 2)


TOOLS = tool_family(
    "media",
    "video",
    [
        Tool(
            "generate_video",
            "Make a video from a text prompt (2-30 s). Keyframes are drawn from the prompt (or "
            "taken from referenceImageIndices) and animated with camera moves and dissolves. Up "
            "to 4 variations; set returnLastFrame to also get each video's final frame as an "
            "image. Results are added to the video list.",
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
            needs=frozenset({"image"}),
        ),
    ],
)
