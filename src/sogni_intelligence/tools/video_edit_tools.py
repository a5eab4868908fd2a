"""Tools that edit existing videos on their timeline or in size: `stitch_video`,
`extend_video`, `replace_video_segment` and `upscale_video`.

Joins, splices and rescales are plain ffmpeg operations; the new pictures of an extension come
from the operator's video model when it answers the call's videoModel (`tools/model_video.py`),
else, like those of a regenerated window, from the keyframe backend (`tools/keyframes.py`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from sogni_intelligence.media.image import RENDERER_NOTE
from sogni_intelligence.media.models import DEFAULT_VIDEO_MODEL
from sogni_intelligence.media.progress import spanning
from sogni_intelligence.media.store import AssetRecord
from sogni_intelligence.media.video.clips import join, rescale, splice
from sogni_intelligence.media.video.diffusion import VideoRequest
from sogni_intelligence.media.video.encoding import even, pick_fps
from sogni_intelligence.media.video.motion import Soundtrack
from sogni_intelligence.media.video.probe import VideoFacts, extract_frame, inspect
from sogni_intelligence.tools.base import (
    Tool,
    ToolArgs,
    ToolContext,
    ToolError,
    ToolOutput,
    tool_family,
)
from sogni_intelligence.tools.keyframes import (
    FFMPEG,
    RENDERER,
    SILENT_MODELS,
    VIDEO_MODEL_IDS,
    Frame,
    animate,
    keyframe_count,
    pick_seed,
    prepare_frames,
    soundtrack,
    stable_seed,
    store_video,
    video_backend,
)
from sogni_intelligence.tools.media_context import AudioIndex, LatestVideoIndex, VideoIndex
from sogni_intelligence.tools.model_video import model_clip, spread, video_model_for

END = -1  # the sentinel for "the end of the base video" in replace_video_segment's window
MIN_WINDOW_S = 0.2

# ---------------------------------------------------------------------------------------------
# Arguments


class StitchTransition(ToolArgs):
    type: Literal["fade", "dissolve", "wipeleft", "wiperight", "slideup", "slidedown"] = "fade"
    durationSeconds: float = Field(0.5, ge=0.2, le=2, description="Overlap in seconds.")


class StitchVideoArgs(ToolArgs):
    videoIndices: list[VideoIndex] = Field(
        max_length=32,
        description="Two or more videos in play order (index convention).",
        # Said by the schema, so that the tool is not offered with fewer videos and a call
        # grammar holds a model to two; checked by the tool (the hosted manifest sets no
        # minimum, and its one-video calls get the tool's message).
        json_schema_extra={"minItems": 2},
    )
    audioIndex: AudioIndex | None = Field(
        None, description="Soundtrack for the whole result: >=0 generated, <0 uploaded audio."
    )
    transition: StitchTransition | None = Field(None, description="Omit for hard cuts.")

    @field_validator("transition", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # A bare type name ("fade") is read as that transition with the default length.
        return {"type": value} if isinstance(value, str) else value


class _NewPictures(ToolArgs):
    """How the new pictures added to a video are drawn."""

    videoModel: str = Field(
        DEFAULT_VIDEO_MODEL,
        description="Video model id, or auto (the operator's video model draws extensions for "
        "its ids; the rest are keyframes).",
        json_schema_extra={"enum": VIDEO_MODEL_IDS},
    )
    seed: int = Field(
        -1, ge=-1, le=2**32 - 1, description="Same seed, same new pictures; -1 is random."
    )
    generateAudio: bool | None = Field(
        None,
        description="A soft ambient tone under the new part (not a sound model); on unless "
        "false or the model is silent (wan22).",
    )

    def with_audio(self) -> bool:
        if self.generateAudio is not None:
            return self.generateAudio
        return self.videoModel not in SILENT_MODELS


class ExtendVideoArgs(_NewPictures):
    videoIndex: LatestVideoIndex = Field(
        -1, description="-1: the latest video, else the first upload."
    )
    duration: float = Field(5, ge=1, le=30, description="Seconds to add (not the new total).")
    prompt: str | None = Field(None, max_length=8000, description="Where the shot goes next.")
    keepOriginalAudio: bool | None = Field(
        None,
        description="No effect: the base keeps its sound and the added part has its own.",
    )


class ReplaceSegmentArgs(_NewPictures):
    videoIndex: LatestVideoIndex = Field(
        -1, description="-1: the latest video, else the first upload."
    )
    startSeconds: float = Field(
        description="Start of the window in the base video (seconds; -1 is its end)."
    )
    endSeconds: float = Field(
        description="End of the window (seconds; -1 is the base's end). With "
        "replacementVideoIndex it may equal startSeconds: an insertion."
    )
    prompt: str | None = Field(
        None,
        min_length=1,
        max_length=8000,
        description="What the regenerated window shows (needed unless replacementVideoIndex).",
    )
    replacementVideoIndex: VideoIndex | None = Field(
        None, description="An existing video to splice in instead of regenerating (indices)."
    )
    replacementStartSeconds: float | None = Field(
        None, ge=0, description="Where the spliced stretch starts in the replacement video."
    )
    replacementEndSeconds: float | None = Field(
        None, ge=0, description="Where it ends (default: the replacement's end)."
    )
    keepOriginalAudio: bool = Field(
        False,
        description="Keep the base's own sound over the window instead of the new part's.",
    )

    @model_validator(mode="after")
    def _windows(self) -> ReplaceSegmentArgs:
        for name in ("startSeconds", "endSeconds"):
            value = getattr(self, name)
            if value < 0 and value != END:
                raise ValueError(f"{name} must be at least 0, or -1 for the end of the video")
        start, end = self.startSeconds, self.endSeconds
        if start != END and end != END:
            if end < start:
                raise ValueError("endSeconds must not be before startSeconds")
            if end == start and self.replacementVideoIndex is None:
                raise ValueError(
                    "endSeconds must be after startSeconds (an insertion needs "
                    "replacementVideoIndex)"
                )
        slice_start, slice_end = self.replacementStartSeconds, self.replacementEndSeconds
        if slice_start is not None and slice_end is not None and slice_end <= slice_start:
            raise ValueError("replacementEndSeconds must be after replacementStartSeconds")
        return self


class UpscaleVideoArgs(ToolArgs):
    sourceVideoIndex: VideoIndex | None = Field(None, description="The video (index convention).")
    videoIndex: VideoIndex | None = Field(None, description="Same as sourceVideoIndex.")
    targetResolution: Literal[1080, 1440] | None = Field(
        None, description="Short side in px; default 1440, or 1080 below a 720 px source."
    )
    detailPreference: Literal["stable", "sharper"] = Field(
        "stable", description="sharper adds an unsharp mask after resampling."
    )
    processingSpeed: Literal["stable", "faster"] = Field(
        "stable", description="faster resamples with bicubic instead of Lanczos."
    )
    seed: int = Field(0, ge=-1, le=2**32 - 1, description="Accepted; resampling has no noise.")


# ---------------------------------------------------------------------------------------------
# Helpers


async def _render_segment(
    ctx: ToolContext,
    args: _NewPictures,
    prompt: str,
    seed: int,
    out: Path,
    facts: VideoFacts,
    length: float,
    workdir: Path,
    *,
    opening: Path | None = None,
) -> tuple[list[str], str]:
    """New pictures for `length` seconds at the base's size and rate: keyframes drawn from
    `prompt` (the first one blended into the `opening` frame when given). Returns the
    motions and what the audio is."""
    width, height = even(facts.width), even(facts.height)
    if opening is not None:
        plan = [Frame(path=opening)]
        if prompt and length >= 3:
            plan.append(Frame(prompt=prompt, seed=stable_seed(seed, 1), blend_with=opening))
    else:
        count = 1 if length < 3 else min(4, keyframe_count(length))
        plan = [Frame(prompt=prompt, seed=stable_seed(seed, k)) for k in range(count)]
    keyframes = await prepare_frames(plan, width, height, workdir, "new")
    track, sound = await soundtrack(ctx, args.with_audio(), seed, None)
    motions, _ = await animate(
        keyframes,
        out,
        size=(width, height),
        duration=length,
        prompt=prompt,
        motion_seed=stable_seed(prompt, seed, "motion"),
        opens=opening is not None,
        fps=pick_fps(facts.fps),
        track=track,
    )
    return [m.name for m in motions], sound


def _window(args: ReplaceSegmentArgs, duration: float) -> tuple[float, float, list[str]]:
    """The window in seconds of the base video, with -1 read as its end."""
    start = duration if args.startSeconds == END else args.startSeconds
    end = duration if args.endSeconds == END else args.endSeconds
    warnings = []
    if start > duration:
        raise ToolError(
            "PARAMETER_INVALID", f"startSeconds is past the end of the video ({duration:.2f}s)"
        )
    if end > duration + 0.05:
        warnings.append(f"endSeconds was clipped to the video's end ({duration:.2f}s)")
    end = min(end, duration)
    if end < start:
        raise ToolError("PARAMETER_INVALID", "the window ends before it starts")
    return start, end, warnings


async def _replacement_slice(
    ctx: ToolContext, args: ReplaceSegmentArgs
) -> tuple[AssetRecord, float, float, list[str]]:
    """The replacement video and the stretch of it to splice in, in seconds."""
    assert args.replacementVideoIndex is not None
    record = ctx.media.resolve("video", args.replacementVideoIndex, "replacementVideoIndex")
    length = (await inspect(await ctx.store.local_path(record))).duration
    begin = args.replacementStartSeconds or 0.0
    until = length if args.replacementEndSeconds is None else args.replacementEndSeconds
    warnings = []
    if begin >= length:
        raise ToolError(
            "PARAMETER_INVALID",
            f"replacementStartSeconds is past the end of the replacement ({length:.2f}s)",
        )
    if until > length + 0.05:
        warnings.append(f"replacementEndSeconds was clipped to its video's end ({length:.2f}s)")
    until = min(until, length)
    if until - begin < MIN_WINDOW_S:
        raise ToolError("PARAMETER_INVALID", "the replacement stretch must be at least 0.2 s")
    ignored = [
        name for name in ("prompt", "seed", "generateAudio") if name in args.model_fields_set
    ]
    if ignored:
        warnings.append(
            f"{', '.join(ignored)} not used: replacementVideoIndex splices an existing video"
        )
    return record, begin, until, warnings


# ---------------------------------------------------------------------------------------------
# Tools


async def stitch_video(args: StitchVideoArgs, ctx: ToolContext) -> ToolOutput:
    if len(args.videoIndices) < 2:
        raise ToolError("PARAMETER_INVALID", "videoIndices needs at least two videos")
    records = [ctx.media.resolve("video", i, "videoIndices") for i in args.videoIndices]
    audio = None
    if args.audioIndex is not None:
        audio = ctx.media.resolve("audio", args.audioIndex, "audioIndex")
    first = await inspect(await ctx.store.local_path(records[0]))
    width, height = even(first.width), even(first.height)
    fps = pick_fps(first.fps)
    transition = args.transition
    warnings: list[str] = []
    scratch = ctx.store.scratch_dir()
    try:
        ctx.progress(0.1, "joining clips")
        out = scratch / "stitched.mp4"
        track = None if audio is None else Soundtrack("file", await ctx.store.local_path(audio))
        _, used = await join(
            [await ctx.store.local_path(r) for r in records],
            out,
            width=width,
            height=height,
            fps=fps,
            transition=transition.type if transition else None,
            transition_s=transition.durationSeconds if transition else 0.5,
            soundtrack=track,
            progress=spanning(ctx.progress, 0.1, 0.9),
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
        record = await store_video(ctx, out, "stitch_video", FFMPEG, meta)
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
    model = video_model_for(ctx, args.videoModel)
    backend = model.backend if model else video_backend(args.videoModel)
    source = ctx.media.latest_video_or_first_upload(args.videoIndex, "videoIndex")
    path = await ctx.store.local_path(source)
    facts = await inspect(path)
    width, height = even(facts.width), even(facts.height)
    fps = pick_fps(facts.fps)
    seed = pick_seed(args.seed)
    warnings: list[str] = []
    scratch = ctx.store.scratch_dir()
    try:
        ctx.progress(0.1, "reading the last frame")
        last = await extract_frame(path, scratch / "last.png")
        added = scratch / "added.mp4"
        meta: dict[str, Any]
        if model is not None:
            track, sound = await soundtrack(ctx, args.with_audio(), seed, None)
            request = VideoRequest(
                args.prompt or "", width, height, args.duration, seed, None, spread([last], 0)
            )
            _, meta, warnings = await model_clip(ctx, model, request, added, track, (0.15, 0.7))
            meta["renderer"] = f"last frame + {meta['renderer']}"
        else:
            ctx.progress(0.3, "animating the continuation")
            motions, sound = await _render_segment(
                ctx,
                args,
                args.prompt or "",
                seed,
                added,
                facts,
                args.duration,
                scratch,
                opening=last,
            )
            meta = {
                "renderer": "last frame + Ken Burns camera move"
                + (" dissolving toward a procedural keyframe" if len(motions) > 1 else "")
                + " + ffmpeg",
                "motions": motions,
            }
        ctx.progress(0.7, "appending")
        out = scratch / "extended.mp4"
        await join(
            [path, added],
            out,
            width=width,
            height=height,
            fps=fps,
            progress=spanning(ctx.progress, 0.7, 0.9),
        )
        ctx.progress(0.9, "storing")
        meta |= {
            "source": source.id,
            "added_seconds": args.duration,
            "prompt": args.prompt,
            "requested_model": args.videoModel,
            "seed": seed,
            "added_audio": sound,
        }
        segment = await store_video(ctx, added, "extend_video", backend, {**meta, "part": "added"})
        record = await store_video(ctx, out, "extend_video", backend, meta)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ToolOutput(
        [record],
        model=args.videoModel,
        backend=backend,
        warnings=warnings,
        extra={"segmentUrl": ctx.store.url(segment)},
    )


async def replace_video_segment(args: ReplaceSegmentArgs, ctx: ToolContext) -> ToolOutput:
    backend = video_backend(args.videoModel)
    source = ctx.media.latest_video_or_first_upload(args.videoIndex, "videoIndex")
    path = await ctx.store.local_path(source)
    facts = await inspect(path)
    start, end, warnings = _window(args, facts.duration)
    width, height = even(facts.width), even(facts.height)
    fps = pick_fps(facts.fps)
    audio: Literal["source", "insert"] = "source" if args.keepOriginalAudio else "insert"
    meta: dict[str, Any] = {
        "source": source.id,
        "window": [start, end],
        "audio": "the source's, also over the window"
        if args.keepOriginalAudio
        else "the new part's over the window",
    }
    scratch = ctx.store.scratch_dir()
    try:
        extra: dict[str, Any] = {}
        if args.replacementVideoIndex is not None:
            replacement, begin, until, notes = await _replacement_slice(ctx, args)
            warnings += notes
            insert, model, backend = await ctx.store.local_path(replacement), FFMPEG, FFMPEG
            meta.update(operation="splice", replacement=replacement.id, slice=[begin, until])
        else:
            if args.prompt is None:
                raise ToolError(
                    "USER_INPUT_INCOMPLETE",
                    "say what the window should show (prompt), or splice an existing video "
                    "in with replacementVideoIndex",
                )
            if end - start < MIN_WINDOW_S:
                raise ToolError("PARAMETER_INVALID", "the window must be at least 0.2 s long")
            seed = pick_seed(args.seed)
            ctx.progress(0.1, "drawing keyframes")
            insert, begin, until = scratch / "segment.mp4", 0.0, None
            motions, sound = await _render_segment(
                ctx, args, args.prompt, seed, insert, facts, end - start, scratch
            )
            model = args.videoModel
            meta.update(
                renderer=RENDERER,
                keyframe_renderer=RENDERER_NOTE,
                prompt=args.prompt,
                requested_model=args.videoModel,
                seed=seed,
                motions=motions,
                segment_audio=sound,
            )
            segment = await store_video(
                ctx, insert, "replace_video_segment", backend, {**meta, "part": "segment"}
            )
            insert = await ctx.store.local_path(segment)  # storing moved the file into the store
            extra["segmentUrl"] = ctx.store.url(segment)
        ctx.progress(0.6, "splicing")
        out = scratch / "spliced.mp4"
        await splice(
            path,
            insert,
            out,
            start=start,
            end=end,
            width=width,
            height=height,
            fps=fps,
            insert_from=begin,
            insert_to=until,
            audio=audio,
            progress=spanning(ctx.progress, 0.6, 0.9),
        )
        ctx.progress(0.9, "storing")
        record = await store_video(ctx, out, "replace_video_segment", backend, meta)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ToolOutput([record], model=model, backend=backend, warnings=warnings, extra=extra)


async def upscale_video(args: UpscaleVideoArgs, ctx: ToolContext) -> ToolOutput:
    if (
        args.videoIndex is not None
        and args.sourceVideoIndex is not None
        and args.videoIndex != args.sourceVideoIndex
    ):
        raise ToolError("PARAMETER_INVALID", "videoIndex and sourceVideoIndex disagree")
    index = args.sourceVideoIndex if args.sourceVideoIndex is not None else args.videoIndex
    source = ctx.media.resolve("video", index, "sourceVideoIndex")
    path = await ctx.store.local_path(source)
    facts = await inspect(path)
    short, long = sorted((facts.width, facts.height))
    target = args.targetResolution or (1440 if short >= 720 else 1080)
    new_long = min(4096, long * target / short)
    new_short = new_long * short / long
    warnings = []
    if new_long < long * target / short:
        warnings.append("the long side was capped at 4096 px")
    if short >= target:
        warnings.append(f"the video is already {short} px on its short side; it was resampled")
    if args.seed != 0:
        warnings.append("seed has no effect: resampling adds no generated detail")
    if facts.width >= facts.height:
        width, height = even(new_long), even(new_short)
    else:
        width, height = even(new_short), even(new_long)
    scaler = "bicubic" if args.processingSpeed == "faster" else "lanczos"
    sharpen = 1.0 if args.detailPreference == "sharper" else 0.0
    scratch = ctx.store.scratch_dir()
    try:
        ctx.progress(0.1, "upscaling")
        out = scratch / "upscaled.mp4"
        await rescale(
            path,
            out,
            width=width,
            height=height,
            scaler=scaler,
            sharpen=sharpen,
            progress=spanning(ctx.progress, 0.1, 0.9),
        )
        ctx.progress(0.9, "storing")
        meta = {
            "operation": "upscale",
            "source": source.id,
            "resampler": scaler,
            "sharpen": sharpen,
            "from": [facts.width, facts.height],
        }
        record = await store_video(ctx, out, "upscale_video", FFMPEG, meta)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ToolOutput([record], model=scaler, backend=FFMPEG, warnings=warnings)


# ---------------------------------------------------------------------------------------------
# Costs (capacity units: one unit is about one second of 720p video made from scratch)


def _replace_cost(args: ReplaceSegmentArgs) -> float:
    if args.replacementVideoIndex is not None:
        return 1.0
    known = min(args.startSeconds, args.endSeconds) >= 0
    window = args.endSeconds - args.startSeconds if known else 3.0
    return round(max(window, MIN_WINDOW_S) + 1, 2)


TOOLS = tool_family(
    "media",
    "video",
    [
        Tool(
            "stitch_video",
            "Join two or more videos into one, with hard cuts or a transition (fade, dissolve, "
            "wipes, slides), optionally under one soundtrack. Clips are fitted to the first "
            "clip's size.",
            StitchVideoArgs,
            stitch_video,
            cost=lambda args: round(1 + 0.25 * len(args.videoIndices), 2),
            needs=frozenset({"video"}),
        ),
        Tool(
            "extend_video",
            "Add seconds to the end of a video, continuing from its last frame with a camera move "
            "(and drifting toward the prompt when one is given). The added part alone is in "
            "segmentUrl.",
            ExtendVideoArgs,
            extend_video,
            cost=lambda args: round(args.duration + 1, 2),
            needs=frozenset({"video"}),
        ),
        Tool(
            "replace_video_segment",
            "Replace the window startSeconds..endSeconds of a video: regenerated from a prompt, or "
            "a stretch of another video (replacementVideoIndex). The new part's sound plays there "
            "unless keepOriginalAudio.",
            ReplaceSegmentArgs,
            replace_video_segment,
            cost=_replace_cost,
            needs=frozenset({"video"}),
        ),
        Tool(
            "upscale_video",
            "Enlarge a video to 1080 or 1440 px on its short side by resampling (no prompt); the "
            "length, frame rate and sound stay.",
            UpscaleVideoArgs,
            upscale_video,
            cost=lambda args: 2.0 if args.targetResolution == 1080 else 3.0,
            needs=frozenset({"video"}),
        ),
    ],
)
