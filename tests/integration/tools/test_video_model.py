"""generate_video, animate_photo and extend_video on a real local LTX-Video pipeline.

The pipeline is a tiny LTX-Video (1-layer transformer, a VAE with LTX's own 32x spatial and 8x
temporal compression, a 1-layer T5 encoder and a word-level tokenizer) built in code with
random weights, written with `save_pretrained` and loaded back from disk by the server, as a
real model folder would be. It renders at 8 fps, so a 2 s clip is 17 frames.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

import torch

from sogni_intelligence.config import Settings
from sogni_intelligence.media.video.diffusion import VideoModel, frame_count, render_size
from sogni_intelligence.tools.base import ToolContext
from tests.integration.tools.conftest import asset_file, ffprobe, model_device, upload_image
from tests.integration.tools.video_helpers import (
    check_video,
    differs,
    frame_at,
    run,
    upload_video,
)

ALIAS = "ltx25"
WORDS = ["a", "cat", "walks", "on", "the", "beach", "at", "sunset"]


def build_tiny_ltx(directory: Path) -> Path:
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXConditionPipeline,
        LTXVideoTransformer3DModel,
    )
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2} | {word: i + 3 for i, word in enumerate(WORDS)}
    words = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=words, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    torch.manual_seed(0)
    text_encoder = T5EncoderModel(
        T5Config(vocab_size=len(vocab), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2)
    )
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        num_layers=1,
        caption_channels=16,
    )
    # Three down blocks that halve space and time plus a 4x4 patch: LTX's 32x and 8x.
    scaling = (True, True, True, False)
    vae = AutoencoderKLLTXVideo(
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=scaling,
        decoder_spatio_temporal_scaling=scaling,
        decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4,
        upsample_factor=(1,) * 4,
        timestep_conditioning=False,
        patch_size=4,
        patch_size_t=1,
    )
    pipe = LTXConditionPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )
    folder = directory / "tiny-ltx-video"
    pipe.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def video_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_ltx(tmp_path_factory.mktemp("models"))


def _attach(ctx: ToolContext, folder: Path, **settings: Any) -> VideoModel:
    config = {"path": str(folder), "aliases": [ALIAS], "steps": 3, "fps": 8}
    config = config | {"device": model_device()} | settings
    parsed = Settings(video_model=config).video_model
    assert parsed is not None
    ctx.services.video = VideoModel(parsed)
    return ctx.services.video


def _video_stream(path: Path) -> dict[str, Any]:
    return next(s for s in ffprobe(path)["streams"] if s["codec_type"] == "video")


async def _meta(ctx: ToolContext, result: dict[str, Any]) -> dict[str, Any]:
    record = await ctx.store.get(result["output_assets"][0]["asset_id"], ctx.owner)
    assert record is not None
    return record.meta


def test_frames_and_sides_map_onto_what_ltx_renders() -> None:
    assert frame_count(5, 24, 8, 161) == (121, False)  # 120 frames asked, 8k+1 covers them
    assert frame_count(2, 8, 8, 161) == (17, False)
    assert frame_count(10, 24, 8, 121) == (121, True)
    assert frame_count(10, 24, 8, 100) == (97, True)  # the cap itself is kept to 8k+1
    assert render_size(1280, 720, 32) == (1280, 736)
    assert render_size(100, 70, 32) == (96, 64)
    assert render_size(20, 500, 32) == (32, 512)


async def test_generate_video_renders_on_the_model_at_the_asked_size_and_length(
    ctx: ToolContext, video_model: Path, progress_log: list, tmp_path: Path
) -> None:
    _attach(ctx, video_model)
    arguments = {"prompt": "a cat walks on the beach", "videoModel": ALIAS, "duration": 2}
    result = await run(ctx, "generate_video", **arguments, width=100, height=70, seed=7)
    assert result["backend"] == "diffusers-ltx-video" and result["model"] == ALIAS
    path = await asset_file(ctx, result)
    check_video(path, 100, 70, 2.0)
    stream = _video_stream(path)
    assert stream["r_frame_rate"] == "8/1" and int(stream["nb_frames"]) == 16
    meta = await _meta(ctx, result)
    assert meta["model"] == video_model.name and video_model.name in meta["renderer"]
    assert meta["rendered_frames"] == 17 and meta["rendered_size"] == [96, 64]
    assert meta["seed"] == 7 and meta["steps"] == 3
    assert (0.05, f"{video_model.name}: 17 frames at 96x64") in progress_log
    steps = [(f, m) for f, m in progress_log if m and "denoising step" in m]
    assert [m for _, m in steps] == [
        f"{video_model.name}: denoising step {i} of 3" for i in (1, 2, 3)
    ]
    fractions = [f for f, _ in steps]
    assert fractions == sorted(fractions) and fractions[0] < fractions[-1] <= 0.95

    again = await run(ctx, "generate_video", **arguments, width=100, height=70, seed=7)
    other = await run(ctx, "generate_video", **arguments, width=100, height=70, seed=8)
    first = frame_at(path, 0, tmp_path / "first.png")
    assert differs(first, frame_at(await asset_file(ctx, again), 0, tmp_path / "again.png")) == 0
    assert differs(first, frame_at(await asset_file(ctx, other), 0, tmp_path / "other.png")) > 1


async def test_a_reference_image_conditions_the_first_frame(
    ctx: ToolContext, video_model: Path, tmp_path: Path
) -> None:
    _attach(ctx, video_model)
    await upload_image(ctx, (320, 240), "orange")
    arguments = {"prompt": "a cat", "videoModel": ALIAS, "duration": 2, "seed": 3}
    plain = await run(ctx, "generate_video", **arguments, width=96, height=64)
    guided = await run(
        ctx, "generate_video", **arguments, width=96, height=64, referenceImageIndices=[-1]
    )
    assert (await _meta(ctx, guided))["reference_images"] == [ctx.media.uploads["image"][0].id]
    path = await asset_file(ctx, guided)
    check_video(path, 96, 64, 2.0)
    plain_first = frame_at(await asset_file(ctx, plain), 0, tmp_path / "plain.png")
    assert differs(plain_first, frame_at(path, 0, tmp_path / "guided.png")) > 1


async def test_animate_photo_pins_the_photo_and_the_end_image(
    ctx: ToolContext, video_model: Path, progress_log: list
) -> None:
    _attach(ctx, video_model)
    photo = await upload_image(ctx, (320, 240), "orange")
    end = await upload_image(ctx, (320, 240), "purple")
    result = await run(
        ctx,
        "animate_photo",
        prompt="the cat walks",
        videoModel=ALIAS,
        sourceImageIndex=-1,
        endImageIndex=-2,
        duration=3,
        width=128,
        height=96,
        generateAudio=False,
        seed=11,
    )
    assert result["backend"] == "diffusers-ltx-video"
    path = await asset_file(ctx, result)
    check_video(path, 128, 96, 3.0)
    meta = await _meta(ctx, result)
    assert meta["source_image"] == photo.id and meta["end_image"] == end.id
    assert meta["model"] == video_model.name and meta["audio"] == "silent"
    assert meta["rendered_frames"] == 25  # 3 s at 8 fps: 24 frames, so 3 * 8 + 1
    assert any(m and "denoising step 3 of 3" in m for _, m in progress_log)


async def test_an_animate_photo_fan_out_renders_one_clip_per_photo_and_joins_them(
    ctx: ToolContext, video_model: Path
) -> None:
    _attach(ctx, video_model)
    await upload_image(ctx, (320, 240), "orange")
    await upload_image(ctx, (240, 320), "teal")
    result = await run(
        ctx,
        "animate_photo",
        prompt="a cat",
        videoModel=ALIAS,
        sourceImageIndices=[-1, -2],
        duration=2,
        width=96,
        height=64,
    )
    assert result["backend"] == "diffusers-ltx-video" and len(result["clipUrls"]) == 2
    check_video(await asset_file(ctx, result), 96, 64, 4.0)
    assert (await _meta(ctx, result))["renderer"].startswith("diffusers-ltx-video")


async def test_extend_video_continues_from_the_last_frame_and_joins(
    ctx: ToolContext, video_model: Path, tmp_path: Path
) -> None:
    _attach(ctx, video_model)
    await upload_video(ctx, tmp_path, 2.0, (256, 144))
    result = await run(
        ctx, "extend_video", videoIndex=-1, duration=2, prompt="the beach", videoModel=ALIAS
    )
    assert result["backend"] == "diffusers-ltx-video"
    path = await asset_file(ctx, result)
    check_video(path, 256, 144, 4.0)
    meta = await _meta(ctx, result)
    assert meta["renderer"].startswith("last frame + diffusers-ltx-video")
    assert meta["added_seconds"] == 2 and meta["model"] == video_model.name
    # The start is the source untouched; the added part is the model's.
    source = frame_at(path, 0.5, tmp_path / "source.png")
    added = frame_at(path, 3.5, tmp_path / "added.png")
    assert differs(source, added) > 1


async def test_a_clip_longer_than_max_frames_is_shortened_with_a_warning(
    ctx: ToolContext, video_model: Path
) -> None:
    _attach(ctx, video_model, max_frames=12)
    result = await run(
        ctx, "generate_video", prompt="a cat", videoModel=ALIAS, duration=3, width=96, height=64
    )
    assert any("at most 9 frames at 8 fps" in w for w in result["warnings"]), result
    path = await asset_file(ctx, result)
    check_video(path, 96, 64, 1.125)
    assert int(_video_stream(path)["nb_frames"]) == 9


async def test_other_ids_stay_on_the_keyframe_backend(
    ctx: ToolContext, video_model: Path, progress_log: list
) -> None:
    _attach(ctx, video_model)
    result = await run(ctx, "generate_video", prompt="a cat", videoModel="wan22", duration=2)
    assert result["ok"] and result["backend"] == "keyframe-video"
    assert not any(m and "denoising" in m for _, m in progress_log)


async def test_cancelling_stops_the_render_at_the_next_step(
    ctx: ToolContext, video_model: Path, progress_log: list
) -> None:
    _attach(ctx, video_model, steps=200)

    def steps_done() -> int:
        return sum(1 for _, m in progress_log if m and "denoising step" in m)

    task = asyncio.create_task(
        run(ctx, "generate_video", prompt="a cat", videoModel=ALIAS, duration=4, width=128)
    )
    for _ in range(3000):  # up to 30 s for the first steps on a busy machine
        if steps_done() >= 2:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)  # reports the worker queued before it stopped
    stopped_at = steps_done()
    await asyncio.sleep(0.5)
    assert 2 <= stopped_at < 200 and steps_done() == stopped_at


async def test_running_out_of_device_memory_is_gpu_worker_failed_and_unloads(
    ctx: ToolContext, video_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffusers import LTXVideoTransformer3DModel

    _attach(ctx, video_model)
    arguments = {"prompt": "a cat", "videoModel": ALIAS, "duration": 2, "width": 96, "height": 64}

    def exhausted(*_args: object, **_kwargs: object) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with monkeypatch.context() as patch:
        patch.setattr(LTXVideoTransformer3DModel, "forward", exhausted)
        result = await run(ctx, "generate_video", **arguments)
    assert result["error_type"] == "GPU_WORKER_FAILED" and result["retryable"] is True
    assert "out of memory" in result["message"] and "unloaded" in result["message"]
    assert (await run(ctx, "generate_video", **arguments))["ok"]


async def test_a_missing_or_foreign_model_folder_is_model_unavailable(
    ctx: ToolContext, tmp_path: Path
) -> None:
    _attach(ctx, tmp_path / "nowhere")
    result = await run(ctx, "generate_video", prompt="a cat", videoModel=ALIAS, duration=2)
    assert result["error_type"] == "MODEL_UNAVAILABLE"
    assert "nowhere" in result["message"] and "missing" in result["message"]

    foreign = tmp_path / "image-model"
    foreign.mkdir()
    (foreign / "model_index.json").write_text(
        json.dumps({"_class_name": "StableDiffusionPipeline"})
    )
    _attach(ctx, foreign)
    result = await run(ctx, "generate_video", prompt="a cat", videoModel=ALIAS, duration=2)
    assert result["error_type"] == "MODEL_UNAVAILABLE"
    assert "StableDiffusionPipeline pipeline, not LTX-Video" in result["message"]

    bare = tmp_path / "bare"
    bare.mkdir()
    _attach(ctx, bare)
    result = await run(ctx, "generate_video", prompt="a cat", videoModel=ALIAS, duration=2)
    assert (
        result["error_type"] == "MODEL_UNAVAILABLE" and "no model_index.json" in result["message"]
    )
