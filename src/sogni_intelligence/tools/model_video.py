"""What the video tools share when the operator's video model answers the call's videoModel:
choosing it, pinning pictures to moments of the clip, and one rendered clip with its metadata
(see `media/video/diffusion.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sogni_intelligence.media.store import MadeFacts
from sogni_intelligence.media.video.diffusion import Pinned, VideoModel, VideoRequest
from sogni_intelligence.media.video.motion import Soundtrack
from sogni_intelligence.tools.base import ToolContext


def video_model_for(ctx: ToolContext, video_model: str) -> VideoModel | None:
    """The operator's video model when it answers `video_model`; None keeps the keyframes."""
    model = ctx.services.video
    return model if model is not None and video_model in model.aliases else None


def spread(images: Sequence[Path], duration_s: float, at_end: bool = False) -> tuple[Pinned, ...]:
    """Pictures spread evenly from the first frame to the last, in order; a single one opens
    the clip, or closes it when `at_end`."""
    if len(images) == 1:
        return (Pinned(images[0], duration_s if at_end else 0.0),)
    last = len(images) - 1
    return tuple(Pinned(image, duration_s * i / last) for i, image in enumerate(images))


async def model_clip(
    ctx: ToolContext,
    model: VideoModel,
    request: VideoRequest,
    out: Path,
    track: Soundtrack,
    span: tuple[float, float],
) -> tuple[MadeFacts, dict[str, Any], list[str]]:
    """Render one clip into `out`, its denoising steps reported as the stretch `span` of the
    tool's progress. Returns its facts, what ran (for the asset's metadata) and warnings."""
    begin, end = span

    def progress(fraction: float, message: str | None) -> None:
        ctx.progress(begin + (end - begin) * fraction, message)

    rendered = await model.render(request, out, track, progress)
    meta: dict[str, Any] = {
        "renderer": f"{model.backend} ({model.name})",
        "model": model.name,
        "steps": rendered.steps,
        "guidance": model.guidance,
        "rendered_frames": rendered.frames,
        "rendered_size": list(rendered.size),
    }
    return rendered.facts, meta, rendered.warnings
