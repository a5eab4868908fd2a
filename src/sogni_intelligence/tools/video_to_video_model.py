"""video_to_video in detailer mode on the operator's local LTX-Video model.

The detailer redraws the uploaded video under the prompt and keeps its motion and composition
(see `VideoModel.render` with a source video). It runs when `video_model` is configured and the
call's LTX v2v id (ltx25-v2v by default) names one of the model's aliases without its `-v2v`;
every other mode and model keeps the unavailable-tools answer, which decides through `takes`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sogni_intelligence.media.store import AssetRecord, MadeFacts
from sogni_intelligence.media.video.diffusion import VideoModel, VideoRequest
from sogni_intelligence.media.video.motion import SILENCE, Soundtrack
from sogni_intelligence.media.video.probe import VideoFacts, inspect
from sogni_intelligence.tools.base import ToolContext, ToolOutput, ToolServices
from sogni_intelligence.tools.keyframes import fraction, pick_seed, plan_size, store_video
from sogni_intelligence.tools.model_video import model_clip
from sogni_intelligence.tools.unavailable_video_args import V2V_DURATIONS, VideoToVideoArgs
from sogni_intelligence.tools.video_tools import MAX_VARIATIONS

DEFAULT_LTX_V2V = "ltx25-v2v"
V2V_SUFFIX = "-v2v"
TOOL = "video_to_video"
# Options the detailer here does not use: the other modes' inputs and Seedance's extras.
_UNUSED = (
    "sourceImageIndex",
    "maskImageIndex",
    "outpaintPosition",
    "outpaintAspectRatio",
    "expandPrompt",
    "returnLastFrame",
)


def configured(services: ToolServices) -> bool:
    return services.video is not None


def _model_id(args: VideoToVideoArgs) -> str:
    return args.videoModel or DEFAULT_LTX_V2V


def takes(args: VideoToVideoArgs, services: ToolServices) -> bool:
    """A detailer call whose LTX v2v id, less `-v2v`, is one of the video model's aliases."""
    model_id = _model_id(args)
    if args.controlMode != "detailer" or not model_id.endswith(V2V_SUFFIX):
        return False
    return services.video is not None and model_id[: -len(V2V_SUFFIX)] in services.video.aliases


def _source(args: VideoToVideoArgs, ctx: ToolContext) -> AssetRecord:
    """The video to redraw. Omitted, it is the uploaded one (the manifest's "omit when there is
    only one uploaded video"), not the latest video made, which would be the last result."""
    if args.videoSourceIndex is None and ctx.media.uploads["video"]:
        return ctx.media.uploads["video"][0]
    return args.sources()[0].resolve(ctx)


def _size(args: VideoToVideoArgs, facts: VideoFacts) -> tuple[int, int, list[str]]:
    """The source's own size, or its shape at targetResolution on the short side."""
    shape = facts.width / facts.height
    if args.targetResolution:
        return plan_size(None, None, shape, args.targetResolution, shape)
    return plan_size(facts.width, facts.height, None, None, shape)


def _duration(args: VideoToVideoArgs, facts: VideoFacts) -> tuple[float, list[str]]:
    """The call's duration, else the source's within the LTX range."""
    low, high = V2V_DURATIONS["ltx"]
    duration = args.duration or min(high, max(low, round(facts.duration, 3)))
    if duration > facts.duration + 0.05:
        return duration, [
            f"the source lasts {facts.duration:.2f}s: its last frame is held for the rest"
        ]
    return duration, []


def _soundtrack(args: VideoToVideoArgs, facts: VideoFacts, path: Path) -> tuple[Soundtrack, str]:
    if args.generateAudio is False:
        return SILENCE, "silent"
    if not facts.has_audio:
        return SILENCE, "silent (the source video has none)"
    return Soundtrack("file", path), "the source video's"


def _warnings(args: VideoToVideoArgs) -> list[str]:
    warnings = []
    unused = [name for name in _UNUSED if getattr(args, name)]
    if unused:
        warnings.append(f"ignored by the detailer here: {', '.join(unused)}")
    if args.outputFormat == "mov":
        warnings.append("outputFormat mov is not offered here; the video is an MP4")
    if args.numberOfVariations > MAX_VARIATIONS:
        warnings.append(f"numberOfVariations was capped at {MAX_VARIATIONS} on the local model")
    return warnings


async def detailer(args: VideoToVideoArgs, ctx: ToolContext) -> ToolOutput:
    model: VideoModel | None = ctx.services.video
    assert model is not None  # checked by `takes`
    source = _source(args, ctx)
    path = await ctx.store.local_path(source)
    facts = await inspect(path)
    width, height, warnings = _size(args, facts)
    duration, more = _duration(args, facts)
    warnings += more + _warnings(args)
    track, sound = _soundtrack(args, facts, path)
    base = pick_seed(args.seed)
    seeds = [(base + i) % 2**32 for i in range(min(args.numberOfVariations, MAX_VARIATIONS))]
    scratch = ctx.store.scratch_dir()
    try:
        made: list[tuple[Path, dict[str, Any], MadeFacts]] = []
        for v, seed in enumerate(seeds):
            request = VideoRequest(
                args.prompt,
                width,
                height,
                duration,
                seed,
                args.negativePrompt,
                source_video=path,
                strength=model.v2v_strength,
            )
            out = scratch / f"detailed-{v}.mp4"
            span = (fraction(v, len(seeds), 0.05), fraction(v, len(seeds), 0.9))
            clip, meta, clip_warnings = await model_clip(ctx, model, request, out, track, span)
            warnings += clip_warnings
            meta |= {
                "renderer": f"{meta['renderer']} redrawing the source video",
                "control_mode": "detailer",
                "strength": model.v2v_strength,
                "source": source.id,
                "prompt": args.prompt,
                "requested_model": _model_id(args),
                "seed": seed,
                "audio": sound,
            }
            if args.negativePrompt:
                meta["negative_prompt"] = args.negativePrompt
            made.append((out, meta, clip))
        ctx.progress(0.95, "storing")
        videos = [
            await store_video(ctx, out, TOOL, model.backend, meta, clip) for out, meta, clip in made
        ]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ToolOutput(
        videos,
        model=_model_id(args),
        backend=model.backend,
        warnings=list(dict.fromkeys(warnings)),
        extra={"prompt": args.prompt},
    )
