"""The local diffusers image backend, run for real on a tiny Stable Diffusion pipeline.

The pipeline is built in code with random weights (a byte-level CLIP tokenizer, a 2-layer text
encoder, a ~1 M parameter UNet and a small VAE), saved with `save_pretrained` and loaded back
by the backend from disk, exactly as a real model directory would be. Nothing is downloaded.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

import torch
from PIL import Image
from pydantic import ValidationError

from sogni_intelligence.config import ImageBackendConfig
from sogni_intelligence.media.diffusers_backend import DiffusersImageBackend
from sogni_intelligence.media.image_request import ImageRequest
from sogni_intelligence.media.remote_image import build_image_backends
from sogni_intelligence.tools.base import ToolContext, execute
from sogni_intelligence.tools.image_tools import TOOLS
from tests.integration.tools.conftest import asset_file, model_device, upload_image

GENERATE = next(t for t in TOOLS if t.name == "generate_image")
EDIT = next(t for t in TOOLS if t.name == "edit_image")
ALIAS = "tiny-sd"


def _byte_symbols() -> list[str]:
    """One printable character per byte value (the usual byte-level BPE alphabet)."""
    kept = {*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)}
    symbols, shifted = [], 0
    for byte in range(256):
        if byte in kept:
            symbols.append(chr(byte))
        else:
            symbols.append(chr(256 + shifted))
            shifted += 1
    return symbols


def build_tiny_pipeline(directory: Path) -> Path:
    """A random-init Stable Diffusion pipeline written to `directory/model`."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    symbols = _byte_symbols()
    vocab = {symbol: i for i, symbol in enumerate(symbols)}
    vocab |= {symbol + "</w>": 256 + i for i, symbol in enumerate(symbols)}
    vocab |= {"<|startoftext|>": 512, "<|endoftext|>": 513}
    tokenizer_files = directory / "tokenizer-source"
    tokenizer_files.mkdir(parents=True)
    (tokenizer_files / "vocab.json").write_text(json.dumps(vocab))
    (tokenizer_files / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(
        str(tokenizer_files / "vocab.json"),
        str(tokenizer_files / "merges.txt"),
        model_max_length=32,
    )

    torch.manual_seed(1234)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=514,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=32,
            bos_token_id=512,
            eos_token_id=513,
            pad_token_id=513,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=64,
        attention_head_dim=8,
        norm_num_groups=16,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(16, 16, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=64,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipeline = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(directory / "model")
    return directory / "model"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # One intra-op thread: on a 2-core machine shared with other work, torch's thread pool
    # spins and gets much slower than a single thread.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield build_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd"))
    torch.set_num_threads(threads)


def _attach(
    ctx: ToolContext, model_dir: Path | str, name: str = "local-sd", **fields: object
) -> DiffusersImageBackend:
    config = ImageBackendConfig(
        name=name,
        kind="diffusers",
        model_path=str(model_dir),
        aliases=[ALIAS],
        **{"steps": 4, "device": model_device(), **fields},
    )
    ctx.services.image_backends = build_image_backends([config])
    backend = ctx.services.image_backends[name]
    assert isinstance(backend, DiffusersImageBackend)
    return backend


async def _generate(ctx: ToolContext, seed: int, **arguments: object) -> dict:
    result = await execute(
        GENERATE,
        {"prompt": "a red fox in snow", "model": ALIAS, "width": 256, "height": 256, "seed": seed}
        | arguments,
        ctx,
    )
    assert result["ok"], result
    return result


async def test_generate_returns_pngs_of_the_requested_size(
    ctx: ToolContext, model_dir: Path, progress_log: list
) -> None:
    backend = _attach(ctx, model_dir)
    result = await _generate(ctx, 7, width=320, height=256, numberOfVariations=2)
    assert result["backend"] == "local-sd" and result["model"] == ALIAS
    assert len(result["output_assets"]) == 2 and result["indices"] == [0, 1]
    pictures = []
    for index in range(2):
        path = await asset_file(ctx, result, index)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(path) as image:
            image.load()
            assert image.format == "PNG" and image.size == (320, 256)
            pictures.append(image.convert("RGB"))
    assert pictures[0].tobytes() != pictures[1].tobytes()  # seed + 1 for the second
    assert len(pictures[0].getcolors(320 * 256) or []) > 100  # a picture, not a flat fill
    assert backend.steps_done == 8  # 4 steps for each image

    fractions = [fraction for fraction, _ in progress_log]
    assert len(fractions) >= 8 and all(0 < f <= 1 for f in fractions)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {"image 1 of 2", "image 2 of 2"} <= {message for _, message in progress_log}


async def test_the_seed_decides_the_picture(ctx: ToolContext, model_dir: Path) -> None:
    _attach(ctx, model_dir)
    first = (await asset_file(ctx, await _generate(ctx, 42))).read_bytes()
    again = (await asset_file(ctx, await _generate(ctx, 42))).read_bytes()
    other = (await asset_file(ctx, await _generate(ctx, 43))).read_bytes()
    assert first == again
    assert first != other


async def test_edit_runs_image_to_image_on_the_upload(ctx: ToolContext, model_dir: Path) -> None:
    backend = _attach(ctx, model_dir, steps=10)
    await upload_image(ctx, (320, 240), "orange")
    result = await execute(EDIT, {"prompt": "make it night", "model": ALIAS, "seed": 3}, ctx)
    assert result["ok"], result
    assert result["backend"] == "local-sd"
    # image-to-image at strength 0.6 runs 6 of the 10 steps, from the source's latents
    assert backend.steps_done == 6
    with Image.open(await asset_file(ctx, result)) as image:
        assert image.size == (320, 240)
        from_orange = image.convert("RGB").tobytes()
    # the same edit of a different source gives a different picture: the source is used
    await upload_image(ctx, (320, 240), "teal")
    result = await execute(
        EDIT, {"prompt": "make it night", "model": ALIAS, "seed": 3, "sourceImageIndex": -2}, ctx
    )
    with Image.open(await asset_file(ctx, result)) as image:
        assert image.convert("RGB").tobytes() != from_orange


async def test_cancelling_the_task_stops_the_pipeline(ctx: ToolContext, model_dir: Path) -> None:
    backend = _attach(ctx, model_dir, steps=500)
    task = asyncio.create_task(_generate(ctx, 1))
    deadline = time.monotonic() + 20
    while backend.steps_done == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert backend.steps_done > 0, "the pipeline never started"
    await asyncio.sleep(0.5)
    cancelled_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - cancelled_at < 2.0
    stopped_at = backend.steps_done
    assert stopped_at < 500
    await asyncio.sleep(0.5)
    assert backend.steps_done == stopped_at  # no thread is still denoising
    assert not backend._local.busy


async def test_a_run_past_the_timeout_is_a_provider_timeout(
    ctx: ToolContext, model_dir: Path
) -> None:
    backend = _attach(ctx, model_dir, steps=500, timeout_s=1.0)
    started = time.monotonic()
    result = await execute(
        GENERATE, {"prompt": "x", "model": ALIAS, "width": 256, "height": 256}, ctx
    )
    assert result["ok"] is False and result["error_type"] == "PROVIDER_TIMEOUT", result
    assert time.monotonic() - started < 5
    stopped_at = backend.steps_done
    await asyncio.sleep(0.3)
    assert backend.steps_done == stopped_at


async def test_a_missing_model_is_a_clear_error(ctx: ToolContext, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="needs model_path"):
        ImageBackendConfig(name="local-sd", kind="diffusers", aliases=[ALIAS])
    with pytest.raises(ValidationError, match="needs base_url"):
        ImageBackendConfig(name="remote", kind="openai")
    _attach(ctx, tmp_path / "nowhere")
    result = await execute(GENERATE, {"prompt": "x", "model": ALIAS}, ctx)
    assert result["ok"] is False and result["error_type"] == "MODEL_UNAVAILABLE"
    assert "nowhere" in result["message"] and "not a diffusers pipeline" in result["message"]


async def test_without_diffusers_installed_the_backend_says_so(
    ctx: ToolContext, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "diffusers", None)  # makes `import diffusers` fail
    # A backend of its own name: the pipeline other tests loaded stays in the process's cache.
    _attach(ctx, model_dir, name="never-loaded")
    result = await execute(GENERATE, {"prompt": "x", "model": ALIAS}, ctx)
    assert result["ok"] is False and result["error_type"] == "MODEL_UNAVAILABLE"
    assert "sogni-intelligence[diffusers]" in result["message"]


def test_pngs_decode_independently(model_dir: Path) -> None:
    """The backend's bytes are a plain PNG any decoder reads (no tool layer involved)."""
    config = ImageBackendConfig(
        name="local-sd", kind="diffusers", model_path=str(model_dir), steps=2, device=model_device()
    )
    images = asyncio.run(
        DiffusersImageBackend(config).generate(
            ImageRequest(prompt="a boat", width=100, height=60, seed=5), lambda f, m=None: None
        )
    )
    assert len(images) == 1
    with Image.open(io.BytesIO(images[0])) as image:
        assert image.size == (100, 60)  # rendered at 104×64, the nearest multiples of 8
