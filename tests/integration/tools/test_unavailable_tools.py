"""The GPU-only tools: the hosted argument schema is accepted and checked (values, media indices),
and a valid call answers MODEL_UNAVAILABLE naming the models that would serve it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from sogni_intelligence.media.ffmpeg import ffmpeg_exe
from sogni_intelligence.tools.base import ToolContext, execute
from sogni_intelligence.tools.unavailable_tools import TOOLS

from .conftest import upload_image

BY_NAME = {tool.name: tool for tool in TOOLS}
SEGMENTATION = {"remove_background", "segment_image"}


async def run(ctx: ToolContext, name: str, **arguments: Any) -> dict[str, Any]:
    return await execute(BY_NAME[name], arguments, ctx)


async def upload_lavfi(ctx: ToolContext, path: Path, *source: str) -> None:
    """Encode a real clip from ffmpeg's lavfi sources and register it as an upload."""
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", *source, str(path)],
        check=True,
        timeout=60,
    )
    ctx.media.add_upload(await ctx.store.put_file(ctx.owner, path))


@pytest.fixture
async def media(ctx: ToolContext, tmp_path: Path) -> ToolContext:
    """Two uploaded images, one uploaded video and one uploaded song."""
    await upload_image(ctx, color="orange")
    await upload_image(ctx, color="teal")
    await upload_lavfi(ctx, tmp_path / "clip.mp4", "-i", "testsrc2=s=160x90:r=10:d=1")
    await upload_lavfi(ctx, tmp_path / "song.wav", "-i", "sine=f=330:d=1")
    assert [len(ctx.media.uploads[k]) for k in ("image", "video", "audio")] == [2, 1, 1]
    return ctx


# Every tool with (nearly) every manifest property spelled as the manifest spells it, and what
# its MODEL_UNAVAILABLE message must name.
FULL_CALLS = {
    "sound_to_video": (
        {
            "prompt": "neon city at night, pulsing with the beat",
            "expandPrompt": False,
            "negativePrompt": "blurry",
            "audioSourceIndex": 0,
            "sourceImageIndex": 1,
            "endImageIndex": -2,
            "audioStart": 0.5,
            "duration": 10,
            "videoModel": "minimax-h3-fasth3-flfa2v-turbo",
            "generateAudio": True,
            "numberOfVariations": 2,
            "targetResolution": 768,
            "aspectRatio": "1344x768",
            "outputFormat": "mp4",
            "returnLastFrame": True,
            "loras": ["h3-better-motion", "h3-vbvr-video-reasoning"],
            "loraStrengths": [0.6, 0.9],
        },
        ["audio-driven video", "MiniMax H3", "asked for: minimax-h3-fasth3-flfa2v-turbo"],
    ),
    "video_to_video": (
        {
            "prompt": "the same street as a watercolor painting",
            "expandPrompt": True,
            "videoSourceIndex": 0,
            "controlMode": "outpaint",
            "negativePrompt": "text",
            "videoModel": "ltx25-v2v",
            "generateAudio": False,
            "targetResolution": 720,
            "sourceImageIndex": -1,
            "outpaintPosition": "left",
            "outpaintAspectRatio": "21:9",
            "maskImageIndex": 1,
            "duration": 6,
            "numberOfVariations": 3,
            "outputFormat": "mov",
            "returnLastFrame": False,
        },
        ["video-to-video", "WAN 2.2 Animate", "asked for: ltx25-v2v"],
    ),
    "orbit_video": (
        {
            "elevation": "high-angle shot",
            "distance": "wide shot",
            "prompt": "a bronze statue in a rainy plaza",
            "dialogue": "Look at me",
            "dialogues": ["one", "", "three"],
            "dialogueSegment": 2,
            "angles": ["right side view", "back view"],
            "sourceImageIndex": -2,
        },
        ["novel-view", "video diffusion"],
    ),
    "dance_montage": (
        {
            "dance": "chanel",
            "duration": 14,
            "sourceImageIndex": -1,
            "imagePrompt": "full-body portrait in a red tracksuit",
            "singleClip": True,
        },
        ["motion-transfer", "WAN 2.2 Animate Move"],
    ),
    "image_to_3d": (
        {
            "sourceImageIndex": -1,
            "leftViewImageIndex": -2,
            "back_view_image_url": "https://cdn.example.com/back.png",
            "right_view_image_url": "https://cdn.example.com/right.png",
            "meshTargetFaces": 50_000,
            "textureSize": 2048,
            "normalMapSize": 1024,
            "ambientOcclusionSize": 512,
            "shapeResolution": 1536,
        },
        ["image-to-3D", "Pixal3D"],
    ),
    "remove_background": (
        {"source_image_url": "https://cdn.example.com/portrait.jpg", "applyMask": False},
        ["background-matting", "BiRefNet"],
    ),
    "segment_image": (
        {
            "sourceImageIndex": -2,
            "text": "the red suitcase",
            "boxes": [
                {"x0": 0.1, "y0": 0.2, "x1": 0.5, "y1": 0.9},
                {"x0": 0.6, "y0": 0.1, "x1": 0.9, "y1": 0.4, "label": "negative"},
            ],
            "maxInstances": 3,
            "threshold": 0.35,
            "multimask": False,
            "applyMask": True,
        },
        ["segmentation", "SAM 3"],
    ),
}


def test_every_tool_of_the_module_is_covered() -> None:
    assert set(FULL_CALLS) == set(BY_NAME)


@pytest.mark.parametrize("name", sorted(FULL_CALLS))
async def test_full_manifest_call_answers_model_unavailable(media, name):
    arguments, named = FULL_CALLS[name]
    result = await run(media, name, **arguments)

    assert result["ok"] is False and result["error_type"] == "MODEL_UNAVAILABLE", result
    message = result["message"]
    for fragment in named:
        assert fragment in message, message
    # It names the setting that can serve it here.
    assert "comfyui_tools" in message
    if name in SEGMENTATION:  # a local model can serve it too
        assert "segmentation_model" in message
    assert media.media.generated == {"image": [], "video": [], "audio": []}


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("segment_image", {"prompt": "the dog"}),  # the old spelling of text
        ("dance_montage", {"dance": "rasputin", "prompt": "a cowboy"}),  # of imagePrompt
        ("segment_image", {"points": [{"x": 0.5, "y": 0.5, "label": "positive"}]}),
        ("sound_to_video", {"prompt": "waves", "videoModel": "minimax-h3-fasth3-a2v-turbo"}),
        ("video_to_video", {"prompt": "dusk", "videoSourceIndex": -1}),  # tolerated negative
        ("orbit_video", {}),
        ("dance_montage", {"dance": "spongebob"}),
        ("remove_background", {}),
        ("image_to_3d", {}),
    ],
)
async def test_small_calls_and_old_spellings_validate(media, name, arguments):
    result = await run(media, name, **arguments)
    assert result["error_type"] == "MODEL_UNAVAILABLE", result


@pytest.mark.parametrize(
    ("name", "arguments", "problem"),
    [
        ("sound_to_video", {"prompt": "x", "ratio": "2:1"}, "ratio"),
        ("sound_to_video", {"prompt": "x", "duration": 45}, "duration"),
        ("sound_to_video", {"prompt": "x", "videoModel": "seedance2", "duration": 20}, "4-15"),
        ("sound_to_video", {"prompt": "x", "videoModel": "sora"}, "videoModel"),
        ("sound_to_video", {"prompt": "x", "audioStart": -1}, "audioStart"),
        ("sound_to_video", {"prompt": "x", "loras": ["a", "b"], "loraStrengths": [1]}, "loraS"),
        ("sound_to_video", {"prompt": "x", "loras": [""]}, "loras"),
        ("sound_to_video", {"prompt": "x", "referenceLinkUrl": "file:///etc/passwd"}, "http"),
        ("sound_to_video", {"prompt": "x", "endImageIndex": -1}, "flfa2v"),
        (
            "sound_to_video",
            {"prompt": "x", "videoModel": "minimax-h3-fasth3-flfa2v-turbo", "sourceImageIndex": 0},
            "endImageIndex",
        ),
        (
            "sound_to_video",
            {"prompt": "x", "videoModel": "minimax-h3-fasth3-a2v-turbo", "generateAudio": False},
            "generateAudio",
        ),
        ("sound_to_video", {"audioSourceIndex": 0}, "prompt"),
        ("video_to_video", {"prompt": "x", "controlMode": "sketch"}, "controlMode"),
        (
            "video_to_video",
            {"prompt": "x", "controlMode": "canny", "videoModel": "wan22-animate"},
            "canny",
        ),
        ("video_to_video", {"prompt": "x", "outpaintAspectRatio": "5:4"}, "outpaintAspectRatio"),
        ("video_to_video", {"prompt": "x", "numberOfVariations": 17}, "numberOfVariations"),
        ("orbit_video", {"elevation": "bird's eye"}, "elevation"),
        ("orbit_video", {"angles": ["back view", "back view"]}, "repeat"),
        ("orbit_video", {"angles": ["back view"], "dialogueSegment": 2}, "dialogueSegment"),
        ("dance_montage", {}, "dance"),
        ("dance_montage", {"dance": "macarena"}, "dance"),
        ("dance_montage", {"dance": "rasputin", "duration": 5}, "duration"),
        ("dance_montage", {"dance": "rasputin", "duration": 25, "singleClip": True}, "20"),
        ("image_to_3d", {"meshTargetFaces": 1000}, "meshTargetFaces"),
        ("image_to_3d", {"shapeResolution": 2048}, "shapeResolution"),
        ("image_to_3d", {"textureSize": 8192}, "textureSize"),
        ("image_to_3d", {"sourceImageIndex": -1, "source_image_url": "https://a.b/c"}, "both"),
        ("image_to_3d", {"backViewImageIndex": 0, "back_view_image_url": "https://a.b/c"}, "both"),
        ("remove_background", {"source_image_url": "not a url"}, "source_image_url"),
        ("remove_background", {"applyMask": "sometimes"}, "applyMask"),
        ("segment_image", {}, "say what to select"),
        ("segment_image", {"text": "x" * 241}, "text"),
        ("segment_image", {"text": "cat", "threshold": 1.5}, "threshold"),
        ("segment_image", {"text": "cat", "maxInstances": 0}, "maxInstances"),
        ("segment_image", {"points": [{"x": 2, "y": 0.5, "label": "positive"}]}, "x"),
        ("segment_image", {"points": [{"x": 0.2, "y": 0.5}]}, "label"),
        (
            "segment_image",
            {"text": "cat", "points": [{"x": 0.2, "y": 0.5, "label": "positive"}]},
            "points",
        ),
        ("segment_image", {"boxes": [{"x0": 0.5, "y0": 0.5, "x1": 0.2, "y1": 0.9}]}, "x0 < x1"),
        (
            "segment_image",
            {"boxes": [{"x0": 0, "y0": 0, "x1": 1, "y1": 1, "label": "negative"}]},
            "negative box",
        ),
        ("segment_image", {"text": "cat", "colour": "red"}, "colour"),
    ],
)
async def test_bad_values_are_parameter_invalid(media, name, arguments, problem):
    result = await run(media, name, **arguments)
    assert result["ok"] is False and result["error_type"] == "PARAMETER_INVALID", result
    assert problem in result["message"], result["message"]


@pytest.mark.parametrize(
    ("name", "arguments", "problem"),
    [
        ("video_to_video", {"prompt": "x", "videoSourceIndex": 1}, "videoSourceIndex=1"),
        ("video_to_video", {"prompt": "x", "maskImageIndex": 2}, "maskImageIndex=2"),
        ("sound_to_video", {"prompt": "x", "audioSourceIndex": 3}, "audioSourceIndex=3"),
        ("sound_to_video", {"prompt": "x", "sourceImageIndex": 2}, "sourceImageIndex=2"),
        ("orbit_video", {"sourceImageIndex": 0}, "generated image"),
        ("dance_montage", {"dance": "chanel", "sourceImageIndex": -3}, "uploaded image"),
        ("image_to_3d", {"rightViewImageIndex": 4}, "rightViewImageIndex=4"),
        ("remove_background", {"sourceImageIndex": -5}, "sourceImageIndex=-5"),
        ("segment_image", {"text": "cat", "sourceImageIndex": 1}, "sourceImageIndex=1"),
    ],
)
async def test_indices_that_point_at_nothing_are_asset_not_found(media, name, arguments, problem):
    result = await run(media, name, **arguments)
    assert result["ok"] is False and result["error_type"] == "ASSET_NOT_FOUND", result
    assert problem in result["message"], result["message"]


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("sound_to_video", {"prompt": "x"}),
        ("video_to_video", {"prompt": "x"}),
        ("orbit_video", {}),
        ("image_to_3d", {}),
        ("remove_background", {}),
        ("segment_image", {"text": "cat"}),
    ],
)
async def test_without_any_media_the_implied_source_is_missing(ctx, name, arguments):
    result = await run(ctx, name, **arguments)
    assert result["error_type"] == "ASSET_NOT_FOUND", result


async def test_a_url_needs_no_media_in_the_session(ctx):
    result = await run(
        ctx, "segment_image", source_image_url="https://cdn.example.com/a.png", text="cat"
    )
    assert result["error_type"] == "MODEL_UNAVAILABLE", result
