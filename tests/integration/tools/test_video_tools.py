"""Video tools on the keyframe backend and ffmpeg: real MP4s that decode with the expected
streams, sizes and lengths; index bookkeeping; errors as ok:false; cancellation."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from sogni_intelligence.media.ffmpeg import ffmpeg_exe
from sogni_intelligence.tools import (
    subtitle_tools,
    video_edit_tools,
    video_overlay_tools,
    video_tools,
)
from sogni_intelligence.tools.base import ToolContext
from sogni_intelligence.tools.catalog import CATALOG
from tests.integration.tools.conftest import asset_file, ffprobe, upload_image
from tests.integration.tools.video_helpers import (
    audio_rms,
    check_video,
    frame_at,
    run,
    upload_file,
    upload_video,
)

FAMILIES = (video_tools, video_edit_tools, video_overlay_tools, subtitle_tools)


# --------------------------------------------------------------------------------------------
# generate_video


async def test_generate_video_output_and_indices(
    ctx: ToolContext, progress_log: list[tuple[float, str | None]]
) -> None:
    result = await run(
        ctx, "generate_video", prompt="a lighthouse at sunset", duration=2, width=320, height=180
    )
    assert result["ok"] and result["media_type"] == "video", result
    assert result["indices"] == [0] and result["videoStartIndex"] == 0
    assert result["model"] == "ltx25" and result["backend"] == "keyframe-video"
    check_video(await asset_file(ctx, result), 320, 180, 2.0)
    asset = result["output_assets"][0]
    assert (asset["width"], asset["height"]) == (320, 180)
    assert abs(asset["duration_seconds"] - 2.0) <= 0.1
    meta = asset["metadata"]
    assert "procedural keyframes" in meta["renderer"] and meta["prompt"] == "a lighthouse at sunset"
    # As on the hosted models, an omitted generateAudio means a soundtrack (an ambient tone).
    assert "ambient" in meta["audio"] and audio_rms(await asset_file(ctx, result)) > 50
    assert len(progress_log) >= 3 and progress_log[-1][0] == 1.0

    second = await run(
        ctx, "generate_video", prompt="storm clouds", duration=2, width=256, height=256, seed=5
    )
    assert second["ok"] and second["videoStartIndex"] == 1 and second["indices"] == [1]
    check_video(await asset_file(ctx, second), 256, 256, 2.0)
    assert [r.id for r in ctx.media.generated["video"]] == [
        result["output_assets"][0]["asset_id"],
        second["output_assets"][0]["asset_id"],
    ]


async def test_generate_video_aspect_ratio_variations_and_audio(ctx: ToolContext) -> None:
    result = await run(
        ctx,
        "generate_video",
        prompt="neon city at night, camera pans right",
        duration=2.5,
        aspectRatio="9:16",
        targetResolution=144,
        numberOfVariations=2,
        generateAudio=True,
        negativePrompt="blur",
        seed=11,
    )
    assert result["ok"] and result["indices"] == [0, 1] and result["videoStartIndex"] == 0
    for i in range(2):
        path = await asset_file(ctx, result, i)
        check_video(path, 144, 256, 2.5)
        assert audio_rms(path) > 50  # the generated ambient tone is audible
        meta = result["output_assets"][i]["metadata"]
        assert "ambient" in meta["audio"] and meta["negative_prompt"] == "blur"
        assert meta["seed"] == 11 + i
    assert result["output_assets"][0]["metadata"]["motions"][0] == "pan right"


async def test_generate_video_is_silent_without_audio_and_deterministic(ctx: ToolContext) -> None:
    args = {
        "prompt": "green hills",
        "duration": 2,
        "width": 192,
        "height": 108,
        "seed": 42,
        "generateAudio": False,
    }
    first = await run(ctx, "generate_video", **args)
    second = await run(ctx, "generate_video", **args)
    path = await asset_file(ctx, first)
    assert audio_rms(path) == 0.0
    assert first["output_assets"][0]["metadata"] == second["output_assets"][0]["metadata"]


async def test_generate_video_return_last_frame(ctx: ToolContext) -> None:
    result = await run(
        ctx,
        "generate_video",
        prompt="a red balloon over a desert",
        duration=2,
        width=320,
        height=180,
        returnLastFrame=True,
    )
    assert result["ok"], result
    video, frame = result["output_assets"]
    assert video["type"] == "video" and frame["type"] == "image"
    assert result["videoStartIndex"] == 0 and result["indices"] == [0, 0]
    assert result["lastFrameUrl"] == result["urls"][1] == frame["url"]
    assert result["lastFrameUrls"] == [frame["url"]]
    assert len(ctx.media.generated["video"]) == 1 and len(ctx.media.generated["image"]) == 1
    with Image.open(await asset_file(ctx, result, 1)) as image:
        image.load()
        assert image.format == "PNG" and image.size == (320, 180)
    check_video(await asset_file(ctx, result, 0), 320, 180, 2.0)
    # A following video lands at video index 1; the frame did not take a video slot.
    again = await run(ctx, "generate_video", prompt="x", duration=2, width=128, height=128)
    assert again["videoStartIndex"] == 1


async def test_generate_video_from_reference_images(ctx: ToolContext) -> None:
    first = await upload_image(ctx, (320, 240), "orange")
    second = await upload_image(ctx, (240, 320), "teal")
    result = await run(
        ctx,
        "generate_video",
        prompt="a slow tour",
        duration=3,
        width=320,
        height=240,
        referenceImageIndices=[-1, -2],
        expandPrompt=True,
    )
    assert result["ok"], result
    meta = result["output_assets"][0]["metadata"]
    assert meta["reference_images"] == [first.id, second.id]
    assert meta["keyframes"] == 2
    assert any("expandPrompt" in w for w in result["warnings"])
    path = await asset_file(ctx, result)
    check_video(path, 320, 240, 3.0)
    # The video opens on the first reference image, shown whole.
    opening = frame_at(path, 0, ctx.store.root / "open.png")
    with Image.open(await ctx.store.local_path(first)) as image:
        expected = np.asarray(image.convert("RGB")).astype(np.float64)
    assert np.abs(opening.mean(axis=(0, 1)) - expected.mean(axis=(0, 1))).max() < 12


async def test_generate_video_manifest_options(ctx: ToolContext, tmp_path: Path) -> None:
    args = {
        "prompt": "a lighthouse at sunset over the sea",
        "duration": 2,
        "aspectRatio": "192x108",  # exact pixels
        "seed": 9,
        "generateAudio": False,
        "referenceLinkUrl": "https://example.com/brief",
        "skipPromptProcessing": True,
    }
    first = await run(ctx, "generate_video", **args)
    assert first["ok"], first
    assert first["warnings"] == [
        "referenceFileUrl/referenceLinkUrl are not read by the keyframe backend"
    ]
    path = await asset_file(ctx, first)
    check_video(path, 192, 108, 2.0)
    assert audio_rms(path) == 0.0
    frame = frame_at(path, 1.0, tmp_path / "first.png")
    repeat = await run(ctx, "generate_video", **args)
    assert (
        np.abs(frame - frame_at(await asset_file(ctx, repeat), 1.0, tmp_path / "r.png")).mean() < 1
    )
    # negativePrompt keeps its words out of the drawn keyframes: the same seed draws otherwise.
    avoided = await run(ctx, "generate_video", **args, negativePrompt="sunset sea")
    assert avoided["output_assets"][0]["metadata"]["negative_prompt"] == "sunset sea"
    other = frame_at(await asset_file(ctx, avoided), 1.0, tmp_path / "avoided.png")
    assert np.abs(frame - other).mean() > 3

    many = await run(
        ctx, "generate_video", prompt="dots", duration=2, width=64, height=64, numberOfVariations=6
    )
    assert many["ok"] and len(many["indices"]) == 4, many
    assert many["warnings"] == ["numberOfVariations was capped at 4 on the keyframe video backend"]


async def test_animate_photo_audio_follows_the_model(ctx: ToolContext) -> None:
    await upload_image(ctx, (128, 128), "orange")
    for model, audible in (("minimax-h3-i2v-turbo", True), ("wan22", False)):
        result = await run(
            ctx,
            "animate_photo",
            prompt="drift",
            videoModel=model,
            duration=2,
            width=128,
            height=128,
        )
        assert result["ok"] and result["model"] == model, result
        loudness = audio_rms(await asset_file(ctx, result))
        assert (loudness > 50) if audible else (loudness == 0.0), (model, loudness)


@pytest.mark.parametrize(
    ("arguments", "error_type"),
    [
        ({"videoModel": "no-such-model"}, "PARAMETER_INVALID"),
        ({"duration": 45}, "PARAMETER_INVALID"),
        ({"numberOfVariations": 17}, "PARAMETER_INVALID"),
        ({"aspectRatio": "wide"}, "PARAMETER_INVALID"),
        ({"width": 9000}, "PARAMETER_INVALID"),
        ({"referenceFileUrl": "not a url"}, "PARAMETER_INVALID"),
        ({"referenceImageIndices": [-1]}, "ASSET_NOT_FOUND"),
        ({"unknownOption": 1}, "PARAMETER_INVALID"),
    ],
)
async def test_generate_video_errors(
    ctx: ToolContext, arguments: dict[str, Any], error_type: str
) -> None:
    result = await run(ctx, "generate_video", **{"prompt": "anything", "duration": 2, **arguments})
    assert result["ok"] is False and result["error_type"] == error_type, result
    assert result["message"]


async def test_model_aliases_resolve_to_the_keyframe_backend(ctx: ToolContext) -> None:
    result = await run(
        ctx, "generate_video", prompt="p", videoModel="wan22", duration=2, width=128, height=72
    )
    assert result["ok"] and result["model"] == "wan22" and result["backend"] == "keyframe-video"
    assert result["output_assets"][0]["metadata"]["requested_model"] == "wan22"


# --------------------------------------------------------------------------------------------
# animate_photo


async def test_animate_photo_from_upload(ctx: ToolContext) -> None:
    source = await upload_image(ctx, (320, 240), "orange")
    end = await upload_image(ctx, (320, 240), "purple")
    result = await run(
        ctx,
        "animate_photo",
        prompt="slow zoom in",
        sourceImageIndex=-1,
        endImageIndex=-2,
        duration=2,
        targetResolution=180,
        returnLastFrame=True,
    )
    assert result["ok"], result
    path = await asset_file(ctx, result)
    check_video(path, 240, 180, 2.0)
    meta = result["output_assets"][0]["metadata"]
    assert meta["source_image"] == source.id and meta["end_image"] == end.id
    assert result["videoStartIndex"] == 0 and result["lastFrameUrl"] == result["urls"][1]
    # It opens on the photo and ends on the end image, both shown whole.
    with Image.open(await ctx.store.local_path(end)) as image:
        purple = np.asarray(image.convert("RGB")).astype(np.float64).mean(axis=(0, 1))
    with Image.open(await asset_file(ctx, result, 1)) as image:
        last = np.asarray(image.convert("RGB")).astype(np.float64).mean(axis=(0, 1))
    assert np.abs(last - purple).max() < 12


async def test_animate_photo_frame_roles(ctx: ToolContext) -> None:
    await upload_image(ctx, (256, 256), "orange")
    for role, first_move in (("end", "pull out"), ("both", "push in and back")):
        result = await run(
            ctx,
            "animate_photo",
            prompt="gentle motion",
            frameRole=role,
            duration=2,
            width=128,
            height=128,
        )
        assert result["ok"], result
        assert result["output_assets"][0]["metadata"]["motions"] == [first_move]
        check_video(await asset_file(ctx, result), 128, 128, 2.0)


async def test_animate_photo_fan_out_is_stitched(ctx: ToolContext) -> None:
    await upload_image(ctx, (320, 240), "orange")
    await upload_image(ctx, (320, 240), "navy")
    result = await run(
        ctx,
        "animate_photo",
        prompt="drift",
        prompts=["drift left", "drift right"],
        sourceImageIndices=[-1, -2],
        duration=2,
        targetResolution=144,
    )
    assert result["ok"], result
    assert result["indices"] == [0] and len(result["output_assets"]) == 1
    check_video(await asset_file(ctx, result), 192, 144, 4.0)
    assert len(result["clipUrls"]) == 2
    assert all(url.startswith("http://media.test/v1/media/ast_") for url in result["clipUrls"])
    assert len(result["output_assets"][0]["metadata"]["clips"]) == 2

    separate = await run(
        ctx,
        "animate_photo",
        prompt="drift",
        sourceImageIndices=[-1, -2],
        duration=2,
        targetResolution=144,
        stitch=False,
    )
    assert separate["ok"] and separate["indices"] == [1, 2] and separate["videoStartIndex"] == 1


async def test_made_clips_are_described_as_ffprobe_reads_them(ctx: ToolContext) -> None:
    """Clips made here are stored with the facts they were encoded with, unprobed: those must
    be what ffprobe reads from the stored file, to the microsecond (2.3 s is 55 frames)."""
    await upload_image(ctx, (320, 240), "orange")
    made = [
        await run(ctx, "animate_photo", prompt="drift", duration=2.3, width=160, height=120),
        await run(ctx, "generate_video", prompt="fog", duration=2.3, width=128, height=96),
    ]
    for result in made:
        asset = result["output_assets"][0]
        info = ffprobe(await asset_file(ctx, result))
        video = next(s for s in info["streams"] if s["codec_type"] == "video")
        num, den = video["avg_frame_rate"].split("/")
        assert (asset["width"], asset["height"]) == (video["width"], video["height"])
        assert asset["fps"] == int(num) / int(den) == 24.0
        assert asset["duration_seconds"] == float(info["format"]["duration"]) == 2.291667


@pytest.mark.parametrize(
    ("arguments", "error_type"),
    [
        ({"videoModel": "seedance2"}, "PARAMETER_INVALID"),
        ({"videoModel": "seedance2-5-uncensored"}, "PARAMETER_INVALID"),
        ({"videoModel": "bogus"}, "PARAMETER_INVALID"),
        ({}, "ASSET_NOT_FOUND"),
        ({"sourceImageIndex": 3}, "ASSET_NOT_FOUND"),
        ({"sourceImageIndices": [-1, -2], "endImageIndices": [-1]}, "PARAMETER_INVALID"),
    ],
)
async def test_animate_photo_errors(
    ctx: ToolContext, arguments: dict[str, Any], error_type: str
) -> None:
    result = await run(ctx, "animate_photo", **{"prompt": "move", "duration": 2, **arguments})
    assert result["ok"] is False and result["error_type"] == error_type, result


# --------------------------------------------------------------------------------------------
# stitch_video


@pytest.mark.parametrize(
    "transition", ["fade", "dissolve", "wipeleft", "wiperight", "slideup", "slidedown"]
)
async def test_stitch_with_each_transition(
    ctx: ToolContext, tmp_path: Path, transition: str
) -> None:
    await upload_video(ctx, tmp_path, 1.5, (256, 144), audio=True)
    await upload_video(ctx, tmp_path, 2.0, (320, 240), audio=False)
    result = await run(
        ctx,
        "stitch_video",
        videoIndices=[-1, -2],
        transition={"type": transition, "durationSeconds": 0.5},
    )
    assert result["ok"], result
    assert result["videoStartIndex"] == 0 and len(result["clipUrls"]) == 2
    check_video(await asset_file(ctx, result), 256, 144, 3.0)  # 1.5 + 2.0 - 0.5 overlap
    assert result["output_assets"][0]["metadata"]["transition"]["type"] == transition


async def test_stitch_cuts_generated_and_uploaded_clips(ctx: ToolContext, tmp_path: Path) -> None:
    await upload_video(ctx, tmp_path, 1.0, (320, 180), audio=False)
    made = await run(
        ctx, "generate_video", prompt="sea", duration=2, width=320, height=180, generateAudio=False
    )
    assert made["ok"]
    result = await run(ctx, "stitch_video", videoIndices=[0, -1, 0])
    assert result["ok"] and result["videoStartIndex"] == 1, result
    path = await asset_file(ctx, result)
    check_video(path, 320, 180, 5.0)
    assert audio_rms(path) == 0.0  # neither clip has sound: a silent track is added


async def test_stitch_with_an_audio_track(ctx: ToolContext, tmp_path: Path) -> None:
    await upload_video(ctx, tmp_path, 1.5, audio=False)
    await upload_video(ctx, tmp_path, 2.0, audio=False)
    wav = tmp_path / "tone.wav"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "sine=f=330:d=6", str(wav)],
        check=True,
    )
    audio = await upload_file(ctx, wav)
    assert audio.kind == "audio"
    result = await run(
        ctx,
        "stitch_video",
        videoIndices=[-1, -2],
        audioIndex=-1,
        transition={"type": "dissolve", "durationSeconds": 0.4},
    )
    assert result["ok"], result
    path = await asset_file(ctx, result)
    check_video(path, 256, 144, 3.1)  # trimmed to the video, not the 6 s tone
    assert audio_rms(path) > 1000
    assert result["output_assets"][0]["metadata"]["audio"] == audio.id


async def test_stitch_errors(ctx: ToolContext, tmp_path: Path) -> None:
    await upload_video(ctx, tmp_path, 1.0)
    one = await run(ctx, "stitch_video", videoIndices=[-1])
    assert one["ok"] is False and one["error_type"] == "PARAMETER_INVALID"
    missing = await run(ctx, "stitch_video", videoIndices=[-1, 4])
    assert missing["ok"] is False and missing["error_type"] == "ASSET_NOT_FOUND"
    no_audio = await run(ctx, "stitch_video", videoIndices=[-1, -1], audioIndex=-1)
    assert no_audio["ok"] is False and no_audio["error_type"] == "ASSET_NOT_FOUND"
    bad = await run(
        ctx,
        "stitch_video",
        videoIndices=[-1, -1],
        transition={"type": "spin", "durationSeconds": 1},
    )
    assert bad["ok"] is False and bad["error_type"] == "PARAMETER_INVALID"
    shorthand = await run(ctx, "stitch_video", videoIndices=[-1, -1], transition="wipeleft")
    assert shorthand["ok"], shorthand
    check_video(await asset_file(ctx, shorthand), 256, 144, 1.5)
    long = await run(
        ctx,
        "stitch_video",
        videoIndices=[-1, -1],
        transition={"type": "fade", "durationSeconds": 3},
    )
    assert long["ok"] is False and long["error_type"] == "PARAMETER_INVALID"


# --------------------------------------------------------------------------------------------
# extend_video and replace_video_segment


async def test_extend_video(ctx: ToolContext, tmp_path: Path) -> None:
    source = await upload_video(ctx, tmp_path, 1.5, (256, 144))
    result = await run(ctx, "extend_video", duration=1.5, prompt="the sky turns purple")
    assert result["ok"], result
    check_video(await asset_file(ctx, result), 256, 144, 3.0)
    meta = result["output_assets"][0]["metadata"]
    assert meta["source"] == source.id and meta["added_seconds"] == 1.5
    # -1 now means the latest generated video, which is the extended one.
    again = await run(ctx, "extend_video", videoIndex=-1, duration=1)
    assert again["ok"] and again["videoStartIndex"] == 1
    assert again["output_assets"][0]["metadata"]["source"] == result["output_assets"][0]["asset_id"]
    check_video(await asset_file(ctx, again), 256, 144, 4.0)


async def test_extend_video_without_a_video(ctx: ToolContext) -> None:
    result = await run(ctx, "extend_video", duration=2)
    assert result["ok"] is False and result["error_type"] == "ASSET_NOT_FOUND"


async def test_replace_video_segment(ctx: ToolContext, tmp_path: Path) -> None:
    await upload_video(ctx, tmp_path, 3.0, (256, 144))
    result = await run(
        ctx, "replace_video_segment", startSeconds=1, endSeconds=2, prompt="a burst of fireworks"
    )
    assert result["ok"], result
    path = await asset_file(ctx, result)
    check_video(path, 256, 144, 3.0)
    assert audio_rms(path) > 1000  # the source's tone continues under the new pictures
    source = ctx.media.uploads["video"][0]
    before = frame_at(await ctx.store.local_path(source), 1.5, tmp_path / "a.png")
    after = frame_at(path, 1.5, tmp_path / "b.png")
    kept_before = frame_at(await ctx.store.local_path(source), 0.5, tmp_path / "c.png")
    kept_after = frame_at(path, 0.5, tmp_path / "d.png")
    assert np.abs(before - after).mean() > 20  # the window was regenerated
    assert np.abs(kept_before - kept_after).mean() < 8  # outside it the source stays

    bad = await run(ctx, "replace_video_segment", startSeconds=2, endSeconds=1, prompt="x")
    assert bad["ok"] is False and bad["error_type"] == "PARAMETER_INVALID"
    late = await run(ctx, "replace_video_segment", startSeconds=9, endSeconds=10, prompt="x")
    assert late["ok"] is False and late["error_type"] == "PARAMETER_INVALID"


# --------------------------------------------------------------------------------------------
# overlay_video and add_subtitles


async def test_overlay_text_and_image(ctx: ToolContext, tmp_path: Path) -> None:
    await upload_video(ctx, tmp_path, 2.0, (320, 180))
    logo = await upload_image(ctx, (64, 64), "red")
    result = await run(
        ctx,
        "overlay_video",
        overlays=[
            {"kind": "text", "text": 'It\'s 100%: [done], ok; {x} \\ "q"', "position": "top"},
            {
                "kind": "image",
                "imageIndex": -1,
                "position": "bottom-right",
                "start": 0.5,
                "end": 1.5,
                "opacity": 0.8,
            },
        ],
    )
    assert result["ok"], result
    path = await asset_file(ctx, result)
    check_video(path, 320, 180, 2.0)
    meta = result["output_assets"][0]["metadata"]
    assert meta["overlays"][1] == {"kind": "image", "image": logo.id, "window": [0.5, 1.5]}
    source = await ctx.store.local_path(ctx.media.uploads["video"][0])
    plain = frame_at(source, 1.0, tmp_path / "p.png")
    marked = frame_at(path, 1.0, tmp_path / "m.png")
    corner = (slice(120, 175), slice(250, 315))
    assert np.abs(plain[corner] - marked[corner]).mean() > 20  # logo shows in its window
    early = frame_at(path, 0.1, tmp_path / "e.png")
    plain_early = frame_at(source, 0.1, tmp_path / "pe.png")
    assert np.abs(plain_early[corner] - early[corner]).mean() < 8  # not before its start
    assert np.abs(plain_early[:30] - early[:30]).mean() > 5  # the caption is at the top


async def test_overlay_errors(ctx: ToolContext, tmp_path: Path) -> None:
    empty = await run(ctx, "overlay_video", overlays=[{"kind": "text", "text": "hi"}])
    assert empty["ok"] is False and empty["error_type"] == "ASSET_NOT_FOUND"
    await upload_video(ctx, tmp_path, 1.0)
    no_text = await run(ctx, "overlay_video", overlays=[{"kind": "text"}])
    assert no_text["ok"] is False and no_text["error_type"] == "PARAMETER_INVALID"
    no_image = await run(ctx, "overlay_video", overlays=[{"kind": "image"}])
    assert no_image["ok"] is False and no_image["error_type"] == "ASSET_NOT_FOUND"
    where = await run(
        ctx, "overlay_video", overlays=[{"kind": "text", "text": "x", "position": "middle"}]
    )
    assert where["ok"] is False and where["error_type"] == "PARAMETER_INVALID"


async def test_subtitles_from_cues(ctx: ToolContext, tmp_path: Path) -> None:
    await upload_video(ctx, tmp_path, 2.0, (320, 180), audio=False)
    result = await run(
        ctx,
        "add_subtitles",
        cues=[
            {"start": 0.0, "end": 1.0, "text": "Hello {there}"},
            {"start": 1.0, "end": 2.0, "text": "Second: line, with 'quotes'"},
        ],
        style={"fontSize": 20, "color": "yellow", "position": "top"},
    )
    assert result["ok"] and result["cueCount"] == 2, result
    path = await asset_file(ctx, result)
    check_video(path, 320, 180, 2.0)
    source = await ctx.store.local_path(ctx.media.uploads["video"][0])
    plain = frame_at(source, 0.5, tmp_path / "p.png")
    subbed = frame_at(path, 0.5, tmp_path / "s.png")
    assert np.abs(plain[:50] - subbed[:50]).mean() > 3  # text at the top
    assert np.abs(plain[120:] - subbed[120:]).mean() < 3  # nothing at the bottom


async def test_subtitles_from_srt(ctx: ToolContext, tmp_path: Path) -> None:
    await upload_video(ctx, tmp_path, 2.0, (256, 144))
    srt = "1\r\n00:00:00,000 --> 00:00:01,200\r\nFirst <i>cue</i>\r\n\r\n2\r\n00:00:01.200 --> 00:00:02.000\r\nSecond\r\n"
    result = await run(ctx, "add_subtitles", srt=srt)
    assert result["ok"] and result["cueCount"] == 2, result
    check_video(await asset_file(ctx, result), 256, 144, 2.0)


async def test_subtitles_errors(ctx: ToolContext, tmp_path: Path) -> None:
    await upload_video(ctx, tmp_path, 1.0)
    garbage = await run(ctx, "add_subtitles", srt="no timings here")
    assert garbage["ok"] is False and garbage["error_type"] == "PARAMETER_INVALID"
    both = await run(ctx, "add_subtitles", srt="x", cues=[{"start": 0, "end": 1, "text": "a"}])
    assert both["ok"] is False and both["error_type"] == "PARAMETER_INVALID"
    neither = await run(ctx, "add_subtitles")
    assert neither["ok"] is False and neither["error_type"] == "USER_INPUT_INCOMPLETE"
    # A cue that ends before it starts is shown briefly with a warning (test_subtitle_tools).
    colour = await run(
        ctx, "add_subtitles", cues=[{"start": 0, "end": 1, "text": "a"}], style={"color": "nope"}
    )
    assert colour["ok"] is False and colour["error_type"] == "PARAMETER_INVALID"


# --------------------------------------------------------------------------------------------
# upscale_video


async def test_upscale_video(ctx: ToolContext, tmp_path: Path) -> None:
    await upload_video(ctx, tmp_path, 1.0, (256, 144))
    result = await run(ctx, "upscale_video", sourceVideoIndex=-1)
    assert result["ok"], result
    check_video(await asset_file(ctx, result), 1920, 1080, 1.0)
    assert result["output_assets"][0]["metadata"]["resampler"] == "lanczos"

    await upload_video(ctx, tmp_path, 1.0, (144, 256), audio=False)
    tall = await run(ctx, "upscale_video", videoIndex=-2, targetResolution=1440)
    assert tall["ok"] and tall["videoStartIndex"] == 1, tall
    check_video(await asset_file(ctx, tall), 1440, 2560, 1.0)

    bad = await run(ctx, "upscale_video", videoIndex=-1, targetResolution=720)
    assert bad["ok"] is False and bad["error_type"] == "PARAMETER_INVALID"


# --------------------------------------------------------------------------------------------
# Catalog facts


def test_tool_definitions_and_costs() -> None:
    tools = [tool for family in FAMILIES for tool in family.TOOLS]
    assert [tool.name for tool in tools] == [
        "generate_video",
        "animate_photo",
        "stitch_video",
        "extend_video",
        "replace_video_segment",
        "upscale_video",
        "overlay_video",
        "add_subtitles",
    ]
    for tool in tools:
        assert CATALOG[tool.name] is tool
        schema = tool.definition()["function"]["parameters"]
        assert schema["type"] == "object" and "title" not in schema
    generate = CATALOG["generate_video"]
    short = generate.cost(generate.args.model_validate({"prompt": "p", "duration": 5}))
    long = generate.cost(
        generate.args.model_validate({"prompt": "p", "duration": 20, "numberOfVariations": 2})
    )
    assert 0 < short < long
    stitch = CATALOG["stitch_video"]
    assert stitch.cost(stitch.args.model_validate({"videoIndices": [0, 1]})) > 0


# --------------------------------------------------------------------------------------------
# Cancellation


def _our_ffmpeg_processes(marker: str) -> list[int]:
    """Child processes of this test process running the bundled ffmpeg on our files."""
    exe, me, found = ffmpeg_exe(), os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) != me or state == "Z" or not argv or argv[0].decode() != exe:
            continue
        if any(marker in arg.decode(errors="replace") for arg in argv):
            found.append(int(entry))
    return found


async def test_cancelling_a_long_generation_kills_ffmpeg(ctx: ToolContext) -> None:
    marker = str(ctx.store.root)
    task = asyncio.create_task(
        run(
            ctx,
            "generate_video",
            prompt="a very long flight over mountains",
            duration=30,
            width=1280,
            height=720,
            seed=1,
        )
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not (pids := _our_ffmpeg_processes(marker)):
        assert not task.done(), "the job ended before ffmpeg started"
        assert loop.time() < deadline, "ffmpeg never started"
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    assert not task.done(), "a 30 s 720p video should still be encoding"

    cancelled_at = loop.time()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2)
    assert task in done and loop.time() - cancelled_at < 2
    with pytest.raises(asyncio.CancelledError):
        task.result()
    assert _our_ffmpeg_processes(marker) == []
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}")  # killed and reaped, not left as a zombie
    assert list((ctx.store.root / "tmp").iterdir()) == []  # the scratch files are gone
    assert ctx.media.generated["video"] == []
