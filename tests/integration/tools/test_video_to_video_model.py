"""video_to_video's detailer mode on a real local LTX-Video pipeline (the tiny random-weights
model of `test_video_model.py`, at 8 fps): the source video is decoded, encoded, re-noised part
of the way and redrawn in the truncated schedule; every other mode stays MODEL_UNAVAILABLE."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from sogni_intelligence.config import Settings
from sogni_intelligence.errors import ToolError
from sogni_intelligence.media.video.diffusion import VideoModel, VideoRequest, denoise_steps
from sogni_intelligence.media.video.motion import SILENCE
from sogni_intelligence.tools.base import ToolContext
from tests.integration.tools.conftest import asset_file, model_device
from tests.integration.tools.test_video_model import ALIAS, build_tiny_ltx
from tests.integration.tools.video_helpers import (
    audio_rms,
    check_video,
    differs,
    frame_at,
    run,
    upload_video,
)

DETAILER = {"prompt": "a cat walks on the beach", "controlMode": "detailer"}


@pytest.fixture(scope="module")
def video_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_ltx(tmp_path_factory.mktemp("models"))


def _attach(ctx: ToolContext, folder: Path, **settings: Any) -> VideoModel:
    """The tiny model with 4 steps at strength 0.6: a redraw runs 2 of them."""
    config = {"path": str(folder), "aliases": [ALIAS], "steps": 4, "fps": 8, "v2v_strength": 0.6}
    parsed = Settings(video_model=config | {"device": model_device()} | settings).video_model
    assert parsed is not None
    ctx.services.video = VideoModel(parsed)
    return ctx.services.video


async def _meta(ctx: ToolContext, result: dict[str, Any]) -> dict[str, Any]:
    record = await ctx.store.get(result["output_assets"][0]["asset_id"], ctx.owner)
    assert record is not None
    return record.meta


def _step_messages(progress_log: list) -> list[str]:
    return [m for _, m in progress_log if m and "denoising step" in m]


def test_the_redraw_runs_the_share_of_steps_the_pipeline_keeps() -> None:
    assert denoise_steps(4, 0.6) == (2, 0.625)
    assert denoise_steps(3, 0.1) == (1, 0.5)  # at least one step
    assert denoise_steps(10, 0.99) == (9, 0.95)  # never all: the source would be ignored
    for steps in range(2, 60):
        for strength in (0.05, 0.3, 0.5, 0.6, 0.75, 0.95):
            count, denoise = denoise_steps(steps, strength)
            # diffusers' LTXConditionPipeline.get_timesteps keeps int(steps * denoise_strength).
            assert int(steps * denoise) == count and 0 < denoise < 1
    with pytest.raises(ToolError, match="at least 2"):
        denoise_steps(1, 0.5)


async def test_detailer_redraws_the_source_at_its_size_length_and_sound(
    ctx: ToolContext, video_model: Path, progress_log: list, tmp_path: Path
) -> None:
    _attach(ctx, video_model)
    source = await upload_video(ctx, tmp_path, 3.0, (96, 64))
    result = await run(ctx, "video_to_video", **DETAILER, seed=5)
    assert result["backend"] == "diffusers-ltx-video" and result["model"] == "ltx25-v2v"
    path = await asset_file(ctx, result)
    check_video(path, 96, 64, 3.0)  # the source's size and length
    meta = await _meta(ctx, result)
    assert meta["source"] == source.id and meta["control_mode"] == "detailer"
    assert meta["steps"] == 2 and meta["strength"] == 0.6 and meta["seed"] == 5
    assert meta["rendered_frames"] == 25 and meta["rendered_size"] == [96, 64]
    assert meta["audio"] == "the source video's" and audio_rms(path) > 500  # the 440 Hz tone
    source_path = await ctx.store.local_path(source)
    middle = frame_at(path, 1.5, tmp_path / "made.png")
    assert differs(middle, frame_at(source_path, 1.5, tmp_path / "source.png")) > 1

    assert _step_messages(progress_log) == [
        f"{video_model.name}: denoising step {i} of 2" for i in (1, 2)
    ]
    assert any(m and "redrawing the source video in 2 of 4 steps" in m for _, m in progress_log)
    fractions = [f for f, _ in progress_log]
    assert fractions == sorted(fractions) and fractions[-1] >= 0.95

    again = await run(ctx, "video_to_video", **DETAILER, seed=5)
    other = await run(ctx, "video_to_video", **DETAILER, seed=6)
    assert differs(middle, frame_at(await asset_file(ctx, again), 1.5, tmp_path / "a.png")) == 0
    assert differs(middle, frame_at(await asset_file(ctx, other), 1.5, tmp_path / "o.png")) > 1


async def test_progress_reaches_one_over_the_truncated_schedule(
    ctx: ToolContext, video_model: Path, tmp_path: Path
) -> None:
    model = _attach(ctx, video_model, steps=5)  # strength 0.6: 3 of 5 steps
    source = await ctx.store.local_path(await upload_video(ctx, tmp_path, 2.0, (96, 64)))
    seen: list[tuple[float, str | None]] = []
    request = VideoRequest("a cat", 96, 64, 2.0, 1, source_video=source, strength=0.6)
    rendered = await model.render(
        request, tmp_path / "out.mp4", SILENCE, lambda f, m=None: seen.append((f, m))
    )
    assert rendered.steps == 3
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert [f for f, m in seen if m and "denoising" in m] == pytest.approx([1 / 3, 2 / 3, 1.0])


async def test_target_resolution_variations_and_a_silent_result(
    ctx: ToolContext, video_model: Path, tmp_path: Path
) -> None:
    _attach(ctx, video_model)
    await upload_video(ctx, tmp_path, 2.0, (384, 256))
    result = await run(
        ctx,
        "video_to_video",
        **DETAILER,
        targetResolution=144,
        generateAudio=False,
        duration=2,
        numberOfVariations=2,
        seed=3,
        outputFormat="mov",
    )
    assert len(result["output_assets"]) == 2
    assert "outputFormat mov is not offered here; the video is an MP4" in result["warnings"]
    first, second = await asset_file(ctx, result), await asset_file(ctx, result, 1)
    check_video(first, 216, 144, 2.0)
    check_video(second, 216, 144, 2.0)
    assert (await _meta(ctx, result))["audio"] == "silent" and audio_rms(first) < 1
    one, two = frame_at(first, 1, tmp_path / "1.png"), frame_at(second, 1, tmp_path / "2.png")
    assert differs(one, two) > 1  # seeds 3 and 4


async def test_a_clip_longer_than_max_frames_is_shortened_with_a_warning(
    ctx: ToolContext, video_model: Path, tmp_path: Path
) -> None:
    _attach(ctx, video_model, max_frames=12)
    await upload_video(ctx, tmp_path, 3.0, (96, 64))
    result = await run(ctx, "video_to_video", **DETAILER, videoModel="ltx25-v2v")
    assert any("at most 9 frames at 8 fps" in w for w in result["warnings"]), result
    check_video(await asset_file(ctx, result), 96, 64, 1.125)


@pytest.mark.parametrize(
    "arguments",
    [
        {"controlMode": "canny"},
        {"controlMode": "detailer", "videoModel": "ltx23-v2v"},  # ltx23 is not an alias
        {"videoModel": "ltx25-v2v"},  # no mode: the default is animate-move, on WAN
    ],
)
async def test_other_modes_and_models_stay_unavailable(
    ctx: ToolContext, video_model: Path, tmp_path: Path, arguments: dict[str, Any]
) -> None:
    _attach(ctx, video_model)
    await upload_video(ctx, tmp_path, 2.0, (96, 64))
    result = await run(ctx, "video_to_video", prompt="a cat", **arguments)
    assert result["error_type"] == "MODEL_UNAVAILABLE", result
    assert "Only controlMode detailer runs here" in result["message"]


async def test_without_a_video_model_detailer_is_unavailable(
    ctx: ToolContext, tmp_path: Path
) -> None:
    await upload_video(ctx, tmp_path, 2.0, (96, 64))
    result = await run(ctx, "video_to_video", **DETAILER)
    assert result["error_type"] == "MODEL_UNAVAILABLE" and "video_model" in result["message"]


async def test_cancelling_stops_the_redraw_at_the_next_step(
    ctx: ToolContext, video_model: Path, progress_log: list, tmp_path: Path
) -> None:
    _attach(ctx, video_model, steps=200)  # 120 steps run
    await upload_video(ctx, tmp_path, 2.0, (96, 64))
    task = asyncio.create_task(run(ctx, "video_to_video", **DETAILER))
    for _ in range(3000):  # up to 30 s for the first steps on a busy machine
        if len(_step_messages(progress_log)) >= 2:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)  # reports the worker queued before it stopped
    stopped_at = len(_step_messages(progress_log))
    await asyncio.sleep(0.5)
    assert 2 <= stopped_at < 120 and len(_step_messages(progress_log)) == stopped_at
    assert "of 120" in _step_messages(progress_log)[0]
