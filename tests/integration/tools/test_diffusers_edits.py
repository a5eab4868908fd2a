"""Edits, inpainting and LoRAs on the local diffusers image backend, run for real on the tiny
random-weight Stable Diffusion pipeline of `test_diffusers_backend.py`.

The LoRA is built here too: peft adapters on the tiny UNet's attention projections, given
random non-zero weights and saved with diffusers' own LoRA writer, as a trainer would.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")

import torch
from PIL import Image

from sogni_intelligence.config import ImageBackendConfig
from sogni_intelligence.media.diffusers_backend import DiffusersImageBackend
from sogni_intelligence.media.loras import LORA_KIND, SAFETENSORS_MIME
from sogni_intelligence.media.remote_image import build_image_backends
from sogni_intelligence.store.personal_loras import NewLora, PersonalLoraStore
from sogni_intelligence.tools.base import ToolContext
from tests.integration.tools.conftest import asset_file, model_device, upload_image
from tests.integration.tools.image_helpers import run
from tests.integration.tools.test_diffusers_backend import build_tiny_pipeline

ALIAS = "tiny-sd"
SIDE = 256  # the smallest size the image tools make
STEPS = 4


def build_tiny_lora(model_dir: Path, folder: Path, name: str) -> Path:
    """A LoRA for the tiny pipeline's UNet, written as `folder/name.safetensors`."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(model_dir / "unet", local_files_only=True)
    unet.add_adapter(
        LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    )
    generator = torch.Generator().manual_seed(99)
    with torch.no_grad():
        for weight_name, weight in unet.named_parameters():
            if "lora_" in weight_name:  # peft starts lora_B at zero: the adapter would do nothing
                weight.copy_(torch.randn(weight.shape, generator=generator) * 0.5)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    folder.mkdir(parents=True, exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(
        folder, unet_lora_layers=layers, weight_name=f"{name}.safetensors"
    )
    return folder / f"{name}.safetensors"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see test_diffusers_backend.py
    yield build_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd"))
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def lora_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("loras")
    build_tiny_lora(model_dir, folder, "tiny-style")
    return folder


@pytest.fixture
def backend(ctx: ToolContext, model_dir: Path, lora_dir: Path) -> DiffusersImageBackend:
    config = ImageBackendConfig(
        name="local-sd",
        kind="diffusers",
        model_path=str(model_dir),
        aliases=[ALIAS],
        steps=STEPS,
        lora_dirs=[lora_dir],
        device=model_device(),
    )
    ctx.services.image_backends = build_image_backends([config])
    attached = ctx.services.image_backends["local-sd"]
    assert isinstance(attached, DiffusersImageBackend)
    return attached


async def _picture(ctx: ToolContext, result: dict, size: tuple[int, int]) -> Image.Image:
    """The result's only image, checked to be a PNG of `size` made by the diffusers backend."""
    assert result["ok"] and result["backend"] == "local-sd", result.get("message")
    assert len(result["output_assets"]) == 1
    path = await asset_file(ctx, result)
    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG" and image.size == size
        return image.convert("RGB")


def _left_half_transparent(size: tuple[int, int]) -> str:
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, size[0] // 2, size[1]))
    out = io.BytesIO()
    mask.save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def test_the_pipeline_family_decides_the_features(backend: DiffusersImageBackend) -> None:
    assert {"source", "strength", "mask", "loras"} <= backend.features


async def test_inpainting_changes_only_the_transparent_part(
    ctx: ToolContext, backend: DiffusersImageBackend
) -> None:
    await upload_image(ctx, (SIDE, SIDE), "orange")
    with Image.open(await ctx.store.local_path(ctx.media.uploads["image"][-1])) as opened:
        source = opened.convert("RGB")
    arguments = {
        "prompt": "a hole",
        "model": ALIAS,
        "seed": 2,
        "strength": 1.0,
        "sourceImageIndex": -1,
    }
    masked = await run(
        ctx, "edit_image", mask_image_url=_left_half_transparent((SIDE, SIDE)), **arguments
    )
    assert "warnings" not in masked, masked
    assert backend.steps_done == STEPS  # strength 1: every step, on the inpainting pipeline
    inpainted = await _picture(ctx, masked, (SIDE, SIDE))
    right, left = (SIDE // 2, 0, SIDE, SIDE), (0, 0, SIDE // 2, SIDE)
    assert inpainted.crop(right).tobytes() == source.crop(right).tobytes()
    assert inpainted.crop(left).tobytes() != source.crop(left).tobytes()

    # The mask went to the model: the same edit without it paints the left half differently.
    whole = await _picture(ctx, await run(ctx, "edit_image", **arguments), (SIDE, SIDE))
    assert whole.crop(left).tobytes() != inpainted.crop(left).tobytes()
    assert whole.crop(right).tobytes() != source.crop(right).tobytes()


async def test_without_inpainting_the_mask_limits_the_edit_afterwards(
    ctx: ToolContext, backend: DiffusersImageBackend
) -> None:
    backend.features -= {"mask"}  # as a pipeline family without an inpainting variant
    await upload_image(ctx, (SIDE, SIDE), "orange")
    with Image.open(await ctx.store.local_path(ctx.media.uploads["image"][-1])) as opened:
        source = opened.convert("RGB")
    mask = _left_half_transparent((SIDE, SIDE))
    arguments = {
        "prompt": "a hole",
        "model": ALIAS,
        "seed": 2,
        "strength": 1.0,
        "sourceImageIndex": -1,
    }
    result = await run(ctx, "edit_image", mask_image_url=mask, **arguments)
    assert "warnings" not in result, result
    edited = await _picture(ctx, result, (SIDE, SIDE))
    whole = await _picture(ctx, await run(ctx, "edit_image", **arguments), (SIDE, SIDE))
    right, left = (SIDE // 2, 0, SIDE, SIDE), (0, 0, SIDE // 2, SIDE)
    assert edited.crop(right).tobytes() == source.crop(right).tobytes()
    assert edited.crop(left).tobytes() == whole.crop(left).tobytes()  # image-to-image there


@pytest.mark.parametrize(
    ("tool", "arguments", "steps"),
    [
        ("apply_style", {"prompt": "watercolour", "strength": 0.5}, 2),
        ("refine_result", {"prompt": "warmer light", "strength": 0.75}, 3),
        ("restore_photo", {}, 2),  # the backend's default edit strength, 0.6
        ("change_angle", {"description": "back view high-angle shot", "loraStrength": 0.3}, 1),
    ],
)
async def test_each_edit_tool_runs_on_the_backend_from_its_source(
    ctx: ToolContext, backend: DiffusersImageBackend, tool: str, arguments: dict, steps: int
) -> None:
    sources = []
    for colour in ("orange", "teal"):
        await upload_image(ctx, (64, 32), colour)
        result = await run(
            ctx, tool, model=ALIAS, sourceImageIndex=-1, aspectRatio=f"{SIDE}x{SIDE}", **arguments
        )
        assert "warnings" not in result, result
        sources.append(await _picture(ctx, result, (SIDE, SIDE)))
    # image-to-image runs strength x STEPS steps for each source
    assert backend.steps_done == 2 * steps
    assert sources[0].tobytes() != sources[1].tobytes()  # the source reached the pipeline


async def _generate(ctx: ToolContext, seed: int, **arguments: object) -> bytes:
    result = await run(
        ctx,
        "generate_image",
        prompt="a fox",
        model=ALIAS,
        width=SIDE,
        height=SIDE,
        seed=seed,
        **arguments,
    )
    return (await _picture(ctx, result, (SIDE, SIDE))).tobytes()


async def test_a_lora_changes_the_picture_and_leaves_no_trace(
    ctx: ToolContext, backend: DiffusersImageBackend
) -> None:
    plain = await _generate(ctx, 11)
    styled = await _generate(ctx, 11, loras=["tiny-style"])
    assert styled != plain
    assert await _generate(ctx, 11) == plain  # unloaded: the next request is the base model
    half = await _generate(ctx, 11, loras=["tiny-style"], loraStrengths=[0.5])
    assert half not in (plain, styled)
    assert await _generate(ctx, 11, loras=["tiny-style"]) == styled
    pipelines = backend._local._loaded
    assert pipelines is not None and pipelines.adapters.files_read == 1  # read once, then reused


async def test_a_personal_lora_applies_for_its_owner_only(
    ctx: ToolContext, backend: DiffusersImageBackend, lora_dir: Path
) -> None:
    data = (lora_dir / "tiny-style.safetensors").read_bytes()
    record = await ctx.store.put_checked_bytes(
        ctx.owner, data, mime=SAFETENSORS_MIME, kind=LORA_KIND, tool="test", meta={}
    )
    personal = PersonalLoraStore(ctx.store.db)
    mine = await personal.add(ctx.owner, NewLora("mine", ALIAS, "http://x/l", record.id), 5)
    other = await personal.add("key_other", NewLora("theirs", ALIAS, "http://x/l", record.id), 5)
    assert await _generate(ctx, 11, loras=[mine.id]) == await _generate(
        ctx, 11, loras=["tiny-style"]
    )
    refused = await run(ctx, "generate_image", prompt="x", model=ALIAS, loras=[other.id])
    assert refused["ok"] is False and refused["error_type"] == "PARAMETER_INVALID"
    assert other.id in refused["message"]


async def test_a_lora_applies_to_edits_too(
    ctx: ToolContext, backend: DiffusersImageBackend
) -> None:
    await upload_image(ctx, (SIDE, SIDE))
    arguments = {"prompt": "night", "model": ALIAS, "seed": 4, "sourceImageIndex": -1}
    plain = await _picture(ctx, await run(ctx, "edit_image", **arguments), (SIDE, SIDE))
    result = await run(ctx, "edit_image", loras=["tiny-style"], **arguments)
    assert (await _picture(ctx, result, (SIDE, SIDE))).tobytes() != plain.tobytes()


async def test_lora_ids_that_name_no_usable_file_are_refused(
    ctx: ToolContext, backend: DiffusersImageBackend, lora_dir: Path
) -> None:
    unknown = await run(ctx, "generate_image", prompt="x", model=ALIAS, loras=["no-such-lora"])
    assert unknown["ok"] is False and unknown["error_type"] == "PARAMETER_INVALID"
    assert "no-such-lora" in unknown["message"] and "tiny-style" in unknown["message"]
    escaping = await run(ctx, "generate_image", prompt="x", model=ALIAS, loras=["../tiny-style"])
    assert escaping["error_type"] == "PARAMETER_INVALID", escaping
    (lora_dir / "broken.safetensors").write_bytes(b"not a safetensors file")
    broken = await run(ctx, "generate_image", prompt="x", model=ALIAS, loras=["broken"])
    assert broken["error_type"] == "PARAMETER_INVALID" and "broken" in broken["message"], broken
    # the failed load left the pipeline clean
    assert await _generate(ctx, 11) == await _generate(ctx, 11)


async def test_out_of_memory_unloads_the_pipeline_and_the_next_call_reloads_it(
    ctx: ToolContext, backend: DiffusersImageBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _generate(ctx, 1)
    assert backend._local.loaded_bytes > 0  # the memory budget counts the pipeline's modules
    pipelines = backend._local._loaded
    assert pipelines is not None

    def exhausted(*args: object, **kwargs: object) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(pipelines.text2image.unet, "forward", exhausted)
    result = await run(ctx, "generate_image", prompt="x", model=ALIAS, width=SIDE, height=SIDE)
    assert result["ok"] is False and result["error_type"] == "GPU_WORKER_FAILED", result
    assert "out of memory" in result["message"] and not backend._local.is_loaded
    assert await _generate(ctx, 1)  # loaded afresh, without the failing module


async def test_the_configured_dtype_is_the_weights_dtype(ctx: ToolContext, model_dir: Path) -> None:
    config = ImageBackendConfig(
        name="local-sd-bf16",
        kind="diffusers",
        model_path=str(model_dir),
        aliases=[ALIAS],
        steps=2,
        dtype="bfloat16",
        device=model_device(),
    )
    ctx.services.image_backends = build_image_backends([config])
    result = await run(ctx, "generate_image", prompt="x", model=ALIAS, width=SIDE, height=SIDE)
    assert result["backend"] == "local-sd-bf16", result
    with Image.open(await asset_file(ctx, result)) as image:
        assert image.size == (SIDE, SIDE)
    half = ctx.services.image_backends["local-sd-bf16"]
    assert isinstance(half, DiffusersImageBackend) and half._local._loaded is not None
    assert half._local._loaded.text2image.unet.dtype == torch.bfloat16
