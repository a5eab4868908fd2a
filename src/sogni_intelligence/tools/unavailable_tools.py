"""Tools of the hosted catalog that need models this server cannot run on a CPU.

They keep their place in the catalog with the hosted argument schema, so clients and the LLM
see the same surface as the hosted service and a call is checked as it would be there: a bad
value is PARAMETER_INVALID and an index that points at nothing is ASSET_NOT_FOUND. A valid call
then answers MODEL_UNAVAILABLE, naming the kind of model that would serve it, instead of
faking output. remove_background and segment_image run for real when the operator configures
a local segmentation model (`segmentation_model`), and video_to_video's detailer mode on a
local LTX-Video model (`video_model`); this table is the one place that decides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sogni_intelligence.tools import segmentation_tools, video_to_video_model
from sogni_intelligence.tools.base import (
    Executor,
    Tool,
    ToolContext,
    ToolError,
    ToolOutput,
    ToolServices,
    tool_family,
)
from sogni_intelligence.tools.unavailable_args import UnavailableArgs
from sogni_intelligence.tools.unavailable_image_args import (
    ImageTo3dArgs,
    RemoveBackgroundArgs,
    SegmentImageArgs,
)
from sogni_intelligence.tools.unavailable_video_args import (
    DanceMontageArgs,
    OrbitVideoArgs,
    SoundToVideoArgs,
    VideoToVideoArgs,
)

NO_BACKEND = (
    "No backend on this server provides one: the built-in CPU backends (procedural images, "
    "keyframe video, MIDI music, speech) cannot do this. An operator can bind this tool to a "
    "ComfyUI workflow (the comfyui_tools setting)."
)

SEGMENTATION_HINT = (
    f"{NO_BACKEND} Or set segmentation_model to the folder of a local semantic-segmentation "
    "model, which this server runs itself."
)

V2V_HINT = (
    f"{NO_BACKEND} Only controlMode detailer runs here, on a local LTX-Video model (the "
    "video_model setting) whose aliases name the videoModel without -v2v (ltx25 for the "
    "default ltx25-v2v)."
)


@dataclass(frozen=True)
class _Spec:
    name: str
    description: str
    args: type[UnavailableArgs]
    served_by: str  # the kind of model and the ones the hosted service runs
    #: Runs a checked call when `ready` says the operator configured a local model for it and
    #: `takes` says that model serves this call (a mode, a model id).
    local: Executor | None = None
    ready: Callable[[ToolServices], bool] = lambda services: False
    #: What the operator can do about it.
    hint: str = NO_BACKEND
    takes: Callable[[Any, ToolServices], bool] = lambda args, services: True

    def serves(self, args: UnavailableArgs, services: ToolServices) -> bool:
        return self.ready(services) and self.takes(args, services)

    def tool(self) -> Tool:
        async def run(args: UnavailableArgs, ctx: ToolContext) -> ToolOutput:
            needs = args.missing()
            if needs:
                raise ToolError("PARAMETER_INVALID", "; ".join(needs))
            for source in args.sources():
                source.resolve(ctx)
            if self.local is not None and self.serves(args, ctx.services):
                return await self.local(args, ctx)
            model = args.requested_model()
            asked = f" (asked for: {model})" if model else ""
            raise ToolError(
                "MODEL_UNAVAILABLE",
                f"{self.name} needs {self.served_by}{asked}. {self.hint}",
            )

        return Tool(self.name, self.description, self.args, run, runs_here=self.ready)


_SPECS = [
    _Spec(
        "sound_to_video",
        "Make a video whose picture follows a sound track (an uploaded or generated song or "
        "voice), optionally starting from a photo; lip-sync with a face photo.",
        SoundToVideoArgs,
        "an audio-driven video diffusion model on a GPU: LTX 2.5 or 2.3 audio/image+audio to "
        "video, WAN 2.2 S2V, Seedance 2.0 or 2.5, Wan 3 or MiniMax H3 FastH3",
    ),
    _Spec(
        "video_to_video",
        "Transform an uploaded video: move a photo with its motion, swap its subject, restyle "
        "it under edge, pose or depth control, widen its canvas or regenerate a masked region.",
        VideoToVideoArgs,
        "a video-to-video diffusion model on a GPU: WAN 2.2 Animate, LTX 2.5 or 2.3 with "
        "canny/pose/depth control and in/outpainting, or Seedance 2.0/2.5 V2V",
        video_to_video_model.detailer,
        video_to_video_model.configured,
        V2V_HINT,
        video_to_video_model.takes,
    ),
    _Spec(
        "orbit_video",
        "A looping 360° orbit around the subject of one image: the other views are made, "
        "animated into each other and joined.",
        OrbitVideoArgs,
        "a novel-view image model to make the other camera angles and a first/last-frame video "
        "diffusion model on a GPU to move between them",
    ),
    _Spec(
        "dance_montage",
        "Make a person in a photo perform a known dance (choreography copied from reference "
        "clips); 9:16 portrait video.",
        DanceMontageArgs,
        "a pose-driven motion-transfer video model on a GPU (WAN 2.2 Animate Move) and the "
        "choreography reference clips",
    ),
    _Spec(
        "image_to_3d",
        "Reconstruct a textured 3D model (GLB) from a front image, optionally with left, back "
        "and right views of the same subject.",
        ImageTo3dArgs,
        "an image-to-3D reconstruction model on a GPU (Pixal3D)",
    ),
    _Spec(
        "remove_background",
        "Cut the subject out of an image: a transparent PNG or its soft mask, without "
        "repainting anything.",
        RemoveBackgroundArgs,
        "a background-matting model (BiRefNet)",
        segmentation_tools.remove_background,
        segmentation_tools.configured,
        SEGMENTATION_HINT,
    ),
    _Spec(
        "segment_image",
        "Select objects in an image by a description, points or boxes (0-1 coordinates); "
        "returns a mask or a cut-out.",
        SegmentImageArgs,
        "a promptable segmentation model (SAM 3)",
        segmentation_tools.segment_image,
        segmentation_tools.configured,
        SEGMENTATION_HINT,
    ),
]

TOOLS = tool_family("media", "analysis", [spec.tool() for spec in _SPECS])
