"""Tools of the hosted catalog that need models this server cannot run on a CPU.

They keep their place in the catalog (so clients and the LLM see the same surface as the hosted
service) and answer MODEL_UNAVAILABLE, naming what would be needed, instead of faking output.
"""

from __future__ import annotations

from pydantic import Field

from sogni_intelligence.tools.base import (
    Executor,
    Tool,
    ToolArgs,
    ToolContext,
    ToolError,
    ToolOutput,
)


class SoundToVideoArgs(ToolArgs):
    prompt: str = Field(min_length=1, description="What the video shows.")
    audioSourceIndex: int = Field(0, ge=0, description="0-based index of the uploaded audio.")
    sourceImageIndex: int | None = Field(None, ge=0, description="0-based uploaded image.")
    duration: float | None = Field(None, ge=1, le=60)
    videoModel: str | None = None


class VideoToVideoArgs(ToolArgs):
    prompt: str = Field(min_length=1, description="The new look or motion.")
    videoSourceIndex: int = Field(0, ge=0, description="0-based index of the uploaded video.")
    controlMode: str | None = Field(None, description="e.g. pose, depth, canny.")
    videoModel: str | None = None


class OrbitVideoArgs(ToolArgs):
    prompt: str | None = None
    sourceImageIndex: int | None = None
    duration: float | None = Field(None, ge=2, le=30)


class DanceMontageArgs(ToolArgs):
    prompt: str | None = None
    sourceImageIndex: int | None = None
    sourceVideoIndex: int | None = None
    audioIndex: int | None = None


class ImageTo3dArgs(ToolArgs):
    sourceImageIndex: int | None = None


class RemoveBackgroundArgs(ToolArgs):
    sourceImageIndex: int | None = None


class SegmentImageArgs(ToolArgs):
    prompt: str = Field(min_length=1, description="What to segment.")
    sourceImageIndex: int | None = None


def _unavailable(name: str, needs: str) -> Executor:
    async def run(args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        raise ToolError(
            "MODEL_UNAVAILABLE",
            f"{name} needs {needs}, which this server does not have; no remote backend for it "
            "is configured",
        )

    return run


_SPECS = [
    (
        "sound_to_video",
        "Make a video driven by an uploaded sound track.",
        SoundToVideoArgs,
        "an audio-to-video diffusion model on a GPU",
    ),
    (
        "video_to_video",
        "Restyle or re-control an uploaded video.",
        VideoToVideoArgs,
        "a video-to-video diffusion model on a GPU",
    ),
    (
        "orbit_video",
        "A 360° orbit around the subject of an image.",
        OrbitVideoArgs,
        "a novel-view video model on a GPU",
    ),
    (
        "dance_montage",
        "Transfer a dance onto a character and cut it to music.",
        DanceMontageArgs,
        "a motion-transfer video model on a GPU",
    ),
    (
        "image_to_3d",
        "Turn an image into a 3D model (GLB).",
        ImageTo3dArgs,
        "an image-to-3D model on a GPU",
    ),
    (
        "remove_background",
        "Cut the subject out of an image.",
        RemoveBackgroundArgs,
        "a background-matting model",
    ),
    (
        "segment_image",
        "Mask or cut out what the prompt names.",
        SegmentImageArgs,
        "a promptable segmentation model",
    ),
]

TOOLS = [
    Tool(name, description, args, _unavailable(name, needs))
    for name, description, args, needs in _SPECS
]
