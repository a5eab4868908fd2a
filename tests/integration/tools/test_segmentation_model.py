"""remove_background and segment_image on a real local segmentation model.

The model is a tiny SegFormer built in code with random weights and written with
`save_pretrained`, then loaded back from disk by the server, as a real model folder would be.
Its classifier is set to favour one class everywhere, so what it selects is known.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import numpy as np
import torch
from PIL import Image

from sogni_intelligence.config import LocalModelConfig, Settings
from sogni_intelligence.media.segmentation import SegmentationModel
from sogni_intelligence.tools.base import ToolContext, execute
from sogni_intelligence.tools.call_schema import offered_definition
from sogni_intelligence.tools.unavailable_tools import TOOLS
from tests.integration.tools.conftest import asset_file, model_device, upload_image

BY_NAME = {tool.name: tool for tool in TOOLS}
LABELS = {0: "background", 1: "person", 2: "cat"}


def build_tiny_segformer(directory: Path, favoured: int) -> Path:
    """A random-init SegFormer whose classifier says `favoured` for every pixel."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation
    from transformers.models.segformer import SegformerImageProcessorPil

    torch.manual_seed(0)
    config = SegformerConfig(
        num_encoder_blocks=2,
        depths=[1, 1],
        sr_ratios=[2, 1],
        hidden_sizes=[8, 16],
        num_attention_heads=[1, 1],
        patch_sizes=[7, 3],
        strides=[4, 2],
        mlp_ratios=[2, 2],
        decoder_hidden_size=16,
        num_labels=len(LABELS),
        id2label=LABELS,
        label2id={name: i for i, name in LABELS.items()},
    )
    model = SegformerForSemanticSegmentation(config)
    with torch.no_grad():
        model.decode_head.classifier.weight.zero_()
        model.decode_head.classifier.bias.copy_(torch.tensor([0.0, 0.0, 0.0]))
        model.decode_head.classifier.bias[favoured] = 6.0
    folder = directory / f"tiny-segformer-{LABELS[favoured]}"
    model.save_pretrained(folder)
    SegformerImageProcessorPil(size={"height": 64, "width": 64}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def cat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_segformer(tmp_path_factory.mktemp("models"), favoured=2)


def _attach(ctx: ToolContext, folder: Path, dtype: str = "float32") -> None:
    model = {"path": str(folder), "device": model_device(), "dtype": dtype}
    settings = Settings(segmentation_model=model)
    assert settings.segmentation_model is not None
    ctx.services.segmentation = SegmentationModel(settings.segmentation_model)


async def _run(ctx: ToolContext, name: str, **arguments: object) -> dict:
    return await execute(BY_NAME[name], arguments, ctx)


async def test_remove_background_makes_a_transparent_cutout(
    ctx: ToolContext, cat_model: Path, progress_log: list
) -> None:
    _attach(ctx, cat_model)
    await upload_image(ctx, size=(96, 72))
    result = await _run(ctx, "remove_background")
    assert result["ok"], result
    assert result["backend"] == "transformers-segmentation"
    assert result["model"] == cat_model.name
    with Image.open(await asset_file(ctx, result)) as picture:
        assert picture.format == "PNG" and picture.mode == "RGBA" and picture.size == (96, 72)
        alpha = np.asarray(picture.getchannel("A"))
        assert alpha.min() > 240  # the cat class covers everything: all foreground
        assert picture.getpixel((5, 5))[:3] == (255, 165, 0)  # the source's colours are kept
    record = await ctx.store.get(result["output_assets"][0]["asset_id"], ctx.owner)
    assert record is not None and record.backend == "transformers-segmentation"
    assert record.meta["model"] == cat_model.name
    assert any(message and "segmenting" in message for _, message in progress_log)


async def test_background_is_transparent_and_the_mask_is_greyscale(
    ctx: ToolContext, tmp_path: Path
) -> None:
    _attach(ctx, build_tiny_segformer(tmp_path, favoured=0))
    await upload_image(ctx, size=(64, 48))
    cut = await _run(ctx, "remove_background")
    with Image.open(await asset_file(ctx, cut)) as picture:
        assert np.asarray(picture.getchannel("A")).max() < 15
    mask = await _run(ctx, "remove_background", applyMask=False)
    with Image.open(await asset_file(ctx, mask)) as picture:
        assert picture.mode == "L" and picture.size == (64, 48)


async def test_segment_image_by_text_point_and_box(ctx: ToolContext, cat_model: Path) -> None:
    _attach(ctx, cat_model)
    await upload_image(ctx, size=(80, 60))
    by_text = await _run(ctx, "segment_image", text="the grey cat")
    with Image.open(await asset_file(ctx, by_text)) as picture:
        assert picture.mode == "L" and picture.size == (80, 60)
        assert np.asarray(picture).min() == 255
    boxed = await _run(
        ctx,
        "segment_image",
        boxes=[{"x0": 0.0, "y0": 0.0, "x1": 0.5, "y1": 0.5}],
        applyMask=True,
        maxInstances=2,
    )
    assert boxed["warnings"] and "whole classes" in boxed["warnings"][0]
    with Image.open(await asset_file(ctx, boxed)) as picture:
        alpha = np.asarray(picture.getchannel("A"))
        assert picture.mode == "RGBA" and alpha.shape == (60, 80)
        assert alpha[:25, :35].min() == 255 and alpha[40:, 50:].max() == 0
    clicked = await _run(ctx, "segment_image", points=[{"x": 0.3, "y": 0.6, "label": "positive"}])
    assert clicked["ok"], clicked


async def test_a_half_precision_model_gives_the_same_selection(
    ctx: ToolContext, cat_model: Path
) -> None:
    _attach(ctx, cat_model, dtype="bfloat16")
    await upload_image(ctx, size=(40, 30))
    result = await _run(ctx, "segment_image", text="cat")
    with Image.open(await asset_file(ctx, result)) as picture:
        assert picture.size == (40, 30) and np.asarray(picture).min() == 255


async def test_a_source_given_by_url_is_read_through_the_guarded_fetch(
    ctx: ToolContext, cat_model: Path
) -> None:
    _attach(ctx, cat_model)
    record = await upload_image(ctx, size=(50, 40))
    result = await _run(ctx, "remove_background", source_image_url=ctx.store.url(record))
    with Image.open(await asset_file(ctx, result)) as picture:
        assert picture.mode == "RGBA" and picture.size == (50, 40)


async def test_what_the_model_cannot_select_is_parameter_invalid(
    ctx: ToolContext, cat_model: Path
) -> None:
    _attach(ctx, cat_model)
    await upload_image(ctx)
    unknown = await _run(ctx, "segment_image", text="the category of the suitcase")
    assert unknown["error_type"] == "PARAMETER_INVALID"
    assert "background, person, cat" in unknown["message"]
    nothing = await _run(ctx, "segment_image", text="the person")
    assert nothing["error_type"] == "PARAMETER_INVALID" and "threshold" in nothing["message"]


async def test_a_missing_folder_is_model_unavailable(ctx: ToolContext, tmp_path: Path) -> None:
    _attach(ctx, tmp_path / "nowhere")
    await upload_image(ctx)
    result = await _run(ctx, "remove_background")
    assert result["error_type"] == "MODEL_UNAVAILABLE"
    assert "nowhere" in result["message"] and "missing" in result["message"]


async def test_the_tools_are_offered_to_a_model_only_with_the_setting(
    ctx: ToolContext, cat_model: Path
) -> None:
    await upload_image(ctx)
    assert offered_definition(BY_NAME["segment_image"], ctx.media, ctx.services) is None
    _attach(ctx, cat_model)
    for name in ("remove_background", "segment_image"):
        assert offered_definition(BY_NAME[name], ctx.media, ctx.services) is not None
    assert offered_definition(BY_NAME["image_to_3d"], ctx.media, ctx.services) is None


async def test_without_the_setting_the_tools_stay_unavailable(ctx: ToolContext) -> None:
    await upload_image(ctx)
    result = await _run(ctx, "segment_image", text="cat")
    assert result["error_type"] == "MODEL_UNAVAILABLE"
    assert "segmentation_model" in result["message"]


def test_the_setting_reads_json_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(
        "SOGNI_SEGMENTATION_MODEL",
        f'{{"path": "{tmp_path}", "device": "cuda:0", "dtype": "float16"}}',
    )
    model = Settings().segmentation_model
    assert model == LocalModelConfig(path=tmp_path, device="cuda:0", dtype="float16")
    assert Settings(segmentation_model=None).segmentation_model is None
