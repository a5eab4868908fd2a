"""replace_video_segment, extend_video and upscale_video with the hosted manifest's spellings,
checked on the real files: lengths, which pictures play where, whose sound plays where, seeds
that repeat, and the upscaler's options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from sogni_intelligence.tools.base import ToolContext
from tests.integration.tools.conftest import asset_file
from tests.integration.tools.video_helpers import (
    audio_rms,
    check_video,
    differs,
    frame_at,
    make_clip,
    run,
    upload_file,
    upload_video,
)

SIZE = (256, 144)


async def segment_file(ctx: ToolContext, result: dict) -> Path:
    """The stored file behind a result's segmentUrl (the new part alone)."""
    asset_id = result["segmentUrl"].split("/v1/media/")[1].split("?")[0]
    record = await ctx.store.get(asset_id, ctx.owner)
    assert record is not None
    return await ctx.store.local_path(record)


async def test_splice_a_stretch_of_another_video(ctx: ToolContext, tmp_path: Path) -> None:
    base = await upload_video(ctx, tmp_path, 3.0, SIZE)  # testsrc2 with a 440 Hz tone: -1
    other = await upload_file(  # a different pattern, silent: -2
        ctx, make_clip(tmp_path / "other.mp4", 3.0, SIZE, audio=False, pattern="testsrc")
    )
    base_path, other_path = await ctx.store.local_path(base), await ctx.store.local_path(other)
    window = {"startSeconds": 1, "endSeconds": 2, "replacementVideoIndex": -2}
    # A replacement window: 1..2 s of the base becomes 0.5..1.5 s of the other video.
    result = await run(
        ctx,
        "replace_video_segment",
        videoIndex=-1,
        replacementStartSeconds=0.5,
        replacementEndSeconds=1.5,
        **window,
    )
    assert result["ok"] and result["model"] == "ffmpeg", result
    path = await asset_file(ctx, result)
    check_video(path, *SIZE, 3.0)
    spliced = frame_at(path, 1.5, tmp_path / "spliced.png")
    wanted = frame_at(other_path, 1.0, tmp_path / "wanted.png")  # 0.5 s into the slice
    unshifted = frame_at(other_path, 1.5, tmp_path / "unshifted.png")
    assert differs(spliced, wanted) < 2 < differs(spliced, unshifted)
    kept = frame_at(path, 0.5, tmp_path / "kept.png")
    assert differs(kept, frame_at(base_path, 0.5, tmp_path / "base.png")) < 6
    tail = frame_at(path, 2.5, tmp_path / "tail.png")
    assert differs(tail, frame_at(base_path, 2.5, tmp_path / "base-tail.png")) < 6
    # The replacement's own sound (none) plays in the window; the base's around it.
    assert audio_rms(path, 1.1, 0.8) < 1 and audio_rms(path, 0.1, 0.8) > 1000
    assert audio_rms(path, 2.1, 0.8) > 1000

    ctx.media.add_upload(base)  # the base again, as upload -3 (-1 is now the latest result)
    kept_audio = await run(
        ctx, "replace_video_segment", videoIndex=-3, keepOriginalAudio=True, **window
    )
    assert kept_audio["ok"], kept_audio
    assert audio_rms(await asset_file(ctx, kept_audio), 1.1, 0.8) > 1000  # the base's tone


async def test_insert_and_replace_to_the_end(ctx: ToolContext, tmp_path: Path) -> None:
    base = await upload_video(ctx, tmp_path, 2.0, SIZE)
    await upload_video(ctx, tmp_path, 1.0, SIZE, pattern="color=c=red", tone_hz=880)
    base_path = await ctx.store.local_path(base)
    inserted = await run(
        ctx, "replace_video_segment", startSeconds=1, endSeconds=1, replacementVideoIndex=-2
    )
    assert inserted["ok"], inserted
    path = await asset_file(ctx, inserted)
    check_video(path, *SIZE, 3.0)  # nothing removed: 2 s + 1 s
    red = frame_at(path, 1.5, tmp_path / "red.png").mean(axis=(0, 1))
    assert red[0] > 200 and red[1] < 60 and red[2] < 60
    moved = frame_at(path, 2.5, tmp_path / "moved.png")
    assert differs(moved, frame_at(base_path, 1.5, tmp_path / "b.png")) < 6  # the rest follows

    to_end = await run(
        ctx,
        "replace_video_segment",
        videoIndex=0,
        startSeconds=2.5,
        endSeconds=-1,
        replacementVideoIndex=-2,
        replacementEndSeconds=0.5,
    )
    assert to_end["ok"], to_end
    check_video(await asset_file(ctx, to_end), *SIZE, 3.0)  # 2.5 s kept + 0.5 s of red
    last = frame_at(await asset_file(ctx, to_end), 2.8, tmp_path / "last.png").mean(axis=(0, 1))
    assert last[0] > 200 and last[1] < 60


async def test_regenerated_window_audio_and_seed(ctx: ToolContext, tmp_path: Path) -> None:
    await upload_video(ctx, tmp_path, 3.0, SIZE)
    base_path = await ctx.store.local_path(ctx.media.uploads["video"][0])
    arguments = {
        "videoIndex": -1,  # the latest video: the upload while nothing is generated
        "startSeconds": 1,
        "endSeconds": 2,
        "prompt": "a burst of fireworks",
        "seed": 7,
        "generateAudio": False,
    }
    first = await run(ctx, "replace_video_segment", **arguments)
    assert first["ok"] and first["model"] == "ltx25", first
    path = await asset_file(ctx, first)
    check_video(path, *SIZE, 3.0)
    check_video(await segment_file(ctx, first), *SIZE, 1.0)
    regenerated = frame_at(path, 1.5, tmp_path / "r1.png")
    assert differs(regenerated, frame_at(base_path, 1.5, tmp_path / "b.png")) > 20
    # keepOriginalAudio is false by default: the window has the new part's sound (none here).
    assert audio_rms(path, 1.1, 0.8) < 1 and audio_rms(path, 0.1, 0.8) > 1000

    ctx.media.add_upload(ctx.media.uploads["video"][0])  # the same source again, as upload -2
    again = await run(
        ctx, "replace_video_segment", **{**arguments, "videoIndex": -2, "keepOriginalAudio": True}
    )
    assert again["ok"], again
    # The same seed draws the same window again.
    repeat = frame_at(await asset_file(ctx, again), 1.5, tmp_path / "r2.png")
    assert differs(regenerated, repeat) < 2
    assert audio_rms(await asset_file(ctx, again), 1.1, 0.8) > 1000  # the source's tone kept
    other = await run(ctx, "replace_video_segment", **{**arguments, "seed": 8})
    assert other["ok"], other
    assert (
        differs(regenerated, frame_at(await asset_file(ctx, other), 1.5, tmp_path / "r3.png")) > 5
    )

    unsaid = await run(ctx, "replace_video_segment", startSeconds=1, endSeconds=2)
    assert unsaid["ok"] is False and unsaid["error_type"] == "USER_INPUT_INCOMPLETE"
    past = await run(ctx, "replace_video_segment", startSeconds=9, endSeconds=10, prompt="x")
    assert past["ok"] is False and past["error_type"] == "PARAMETER_INVALID"
    backwards = await run(ctx, "replace_video_segment", startSeconds=2, endSeconds=1, prompt="x")
    assert backwards["ok"] is False and backwards["error_type"] == "PARAMETER_INVALID"


async def test_extend_keeps_the_base_and_repeats_with_a_seed(
    ctx: ToolContext, tmp_path: Path
) -> None:
    base = await upload_video(ctx, tmp_path, 1.5, SIZE)
    arguments = {
        "videoIndex": -1,
        "duration": 2,
        "prompt": "the camera pushes in on the horizon",
        "videoModel": "auto",
        "seed": 3,
        "keepOriginalAudio": False,
    }
    result = await run(ctx, "extend_video", **arguments)
    assert result["ok"], result
    path = await asset_file(ctx, result)
    check_video(path, *SIZE, 3.5)
    check_video(await segment_file(ctx, result), *SIZE, 2.0)
    # The base plays unchanged with its tone; the added part has its own (ambient) sound.
    start = frame_at(path, 0.5, tmp_path / "start.png")
    assert differs(start, frame_at(await ctx.store.local_path(base), 0.5, tmp_path / "b.png")) < 6
    assert audio_rms(path, 0.1, 1.2) > 1000 and audio_rms(path, 2.0, 1.2) > 30

    ctx.media.add_upload(base)  # the same video again, as upload -2
    again = await run(ctx, "extend_video", **{**arguments, "videoIndex": -2})
    assert again["ok"], again
    late = frame_at(path, 3.0, tmp_path / "late.png")
    assert differs(late, frame_at(await asset_file(ctx, again), 3.0, tmp_path / "l2.png")) < 2


async def test_upscale_options(ctx: ToolContext, tmp_path: Path) -> None:
    await upload_video(ctx, tmp_path, 0.5, SIZE)
    options = {
        "stable": {},
        "sharper": {"detailPreference": "sharper", "seed": 5},
        "faster": {"processingSpeed": "faster", "targetResolution": 1080.0},
    }
    results, detail = {}, {}
    for name, extra in options.items():
        results[name] = await run(
            ctx, "upscale_video", sourceVideoIndex=-1, **{"targetResolution": 1080, **extra}
        )
        path = await asset_file(ctx, results[name])
        check_video(path, 1920, 1080, 0.5)
        # Fine detail of a decoded frame: how far it is from a blurred copy of itself.
        grey = Image.fromarray(frame_at(path, 0.2, tmp_path / f"{name}.png").astype(np.uint8))
        grey = grey.convert("L")
        blurred = np.asarray(grey.filter(ImageFilter.GaussianBlur(3)), float)
        detail[name] = float(np.abs(np.asarray(grey, float) - blurred).mean())
    assert "warnings" not in results["stable"]
    assert results["sharper"]["warnings"] == [
        "seed has no effect: resampling adds no generated detail"
    ]
    assert results["stable"]["model"] == "lanczos" and results["faster"]["model"] == "bicubic"
    assert detail["sharper"] > 1.1 * detail["stable"]
    assert detail["faster"] < detail["stable"]  # bicubic is the softer resampler

    # Without targetResolution a source of 720 px or more goes to 1440, a smaller one to 1080.
    await upload_video(ctx, tmp_path, 0.3, (1280, 720), audio=False)
    large = await run(ctx, "upscale_video", sourceVideoIndex=-2)
    assert large["ok"], large
    check_video(await asset_file(ctx, large), 2560, 1440, 0.3)
