"""The content filter where every tool call passes (`execute`): refused arguments stop a real
tool before it makes anything, `safe_content_filter: false` lets it run, and a configured
image classifier screens what the tool made.

The classifier is a tiny ViT built in code with random weights and written with
`save_pretrained`, then loaded back from disk as an operator's model folder would be. Its head
is set to favour one label for every image, so which label it reports is known; the settings
decide whether that label is flagged.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from sogni_intelligence.config import Settings
from sogni_intelligence.tools.base import ToolContext, execute
from sogni_intelligence.tools.catalog import CATALOG
from sogni_intelligence.tools.content_filter import ContentFilter
from tests.integration.tools.conftest import asset_file, model_device

LABELS = {0: "calm", 1: "Unsafe"}
SMALL = {"width": 256, "height": 256, "seed": 3}


def build_tiny_classifier(directory: Path, favoured: int) -> Path:
    """A random-init ViT image classifier whose head says `favoured` for every image."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")

    torch.manual_seed(0)
    config = transformers.ViTConfig(
        image_size=32,
        patch_size=16,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=16,
        num_labels=len(LABELS),
        id2label=LABELS,
        label2id={name: i for i, name in LABELS.items()},
    )
    model = transformers.ViTForImageClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        model.classifier.bias[favoured] = 6.0
    folder = directory / f"tiny-vit-{LABELS[favoured]}"
    model.save_pretrained(folder)
    transformers.models.vit.ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(
        folder
    )
    return folder


@pytest.fixture(scope="module")
def unsafe_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_classifier(tmp_path_factory.mktemp("models"), favoured=1)


def _screen(ctx: ToolContext, **settings: object) -> None:
    ctx.services.content_filter = ContentFilter.from_settings(Settings(**settings))  # type: ignore[arg-type]


async def test_a_refused_prompt_stops_the_tool_and_false_lets_it_run(ctx: ToolContext) -> None:
    _screen(ctx, content_filter_extra_terms=["purple elephant"])
    arguments = {"prompt": "a PURPLE  elephant in the snow", **SMALL}
    refused = await execute(CATALOG["generate_image"], arguments, ctx)
    assert refused["ok"] is False and refused["error_type"] == "CONTENT_FILTERED"
    assert "prompt" in refused["message"] and "snow" not in refused["message"]
    assert ctx.media.generated["image"] == [], "a refused call makes nothing"

    ctx.safe_content_filter = False
    made = await execute(CATALOG["generate_image"], arguments, ctx)
    assert made["ok"] is True, made
    with Image.open(await asset_file(ctx, made)) as picture:
        assert picture.size == (256, 256)


async def test_the_built_in_list_is_on_for_a_bare_context(ctx: ToolContext) -> None:
    refused = await execute(CATALOG["generate_image"], {"prompt": "bestiality", **SMALL}, ctx)
    assert refused["error_type"] == "CONTENT_FILTERED"
    passed = await execute(CATALOG["generate_image"], {"prompt": "a red barn", **SMALL}, ctx)
    assert passed["ok"] is True, passed


async def test_the_classifier_refuses_an_image_with_a_flagged_label(
    ctx: ToolContext, unsafe_model: Path
) -> None:
    model = {"path": str(unsafe_model), "device": model_device(), "flagged_labels": ["unsafe"]}
    _screen(ctx, content_filter_model=model)
    refused = await execute(CATALOG["generate_image"], {"prompt": "a red barn", **SMALL}, ctx)
    assert refused["ok"] is False and refused["error_type"] == "CONTENT_FILTERED"
    assert "'Unsafe'" in refused["message"] and "output image 1" in refused["message"]
    assert ctx.media.generated["image"] == []

    # The same model with only its other label flagged passes the image.
    _screen(ctx, content_filter_model={**model, "flagged_labels": ["calm"]})
    passed = await execute(CATALOG["generate_image"], {"prompt": "a red barn", **SMALL}, ctx)
    assert passed["ok"] is True, passed

    # With the filter off, the classifier is not asked at all.
    _screen(ctx, content_filter_model=model)
    ctx.safe_content_filter = False
    unscreened = await execute(CATALOG["generate_image"], {"prompt": "a red barn", **SMALL}, ctx)
    assert unscreened["ok"] is True, unscreened


async def test_a_threshold_above_the_label_probability_passes(
    ctx: ToolContext, unsafe_model: Path
) -> None:
    # Two labels and a bias of 6: the favoured label has a probability of about 0.9975.
    model = {"path": str(unsafe_model), "device": model_device(), "flagged_labels": ["unsafe"]}
    model["threshold"] = 0.999
    _screen(ctx, content_filter_model=model)
    passed = await execute(CATALOG["generate_image"], {"prompt": "a red barn", **SMALL}, ctx)
    assert passed["ok"] is True, passed
