"""A local semantic-segmentation model (any transformers `AutoModelForSemanticSegmentation`,
e.g. SegFormer or DPT) and the masks the image utilities make from its class map.

The model gives every pixel a probability per class it knows (its `id2label`). The foreground
is everything that is not a background class, which is what background removal needs. A
selection picks classes: by name from a text, by the class under a click, or the main class
inside a box. Such a model knows classes, not instances, so a selection is one mask.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from PIL import Image

from sogni_intelligence.config import LocalModelConfig
from sogni_intelligence.errors import ToolError
from sogni_intelligence.media.local_model import local_model
from sogni_intelligence.media.progress import Progress
from sogni_intelligence.media.transformers_models import ImageModel, image_model_loader

BACKEND = "transformers-segmentation"
BACKGROUND_LABELS = frozenset({"background", "bg", "unlabeled", "unlabelled", "void"})


@dataclass(frozen=True)
class Region:
    """A click or a box in 0-1 image coordinates (a click has x0 == x1, y0 == y1)."""

    x0: float
    y0: float
    x1: float
    y1: float
    positive: bool = True


def _class_probabilities(segmenter: ImageModel, image: Image.Image) -> ClassMap:
    torch = segmenter.torch
    inputs = segmenter.processor(images=image, return_tensors="pt")
    pixels = inputs["pixel_values"].to(segmenter.device, segmenter.dtype)
    with torch.inference_mode():
        logits = segmenter.model(pixel_values=pixels).logits.float()
        logits = torch.nn.functional.interpolate(
            logits, size=(image.height, image.width), mode="bilinear", align_corners=False
        )
        probabilities = logits.softmax(dim=1)[0].cpu().numpy()
    config = segmenter.model.config
    labels = [str(config.id2label.get(i, f"class {i}")) for i in range(probabilities.shape[0])]
    return ClassMap(probabilities, labels)


def _words(text: str) -> str:
    """Lower-case words separated by single spaces ('Traffic_Light' -> 'traffic light')."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


@dataclass
class ClassMap:
    """Per-pixel class probabilities (classes x height x width) and the class names."""

    probabilities: np.ndarray
    labels: list[str]

    def background(self) -> list[int]:
        named = [i for i, label in enumerate(self.labels) if label.lower() in BACKGROUND_LABELS]
        return named or [0]

    def foreground(self) -> np.ndarray:
        """The probability that a pixel is not background, height x width in [0, 1]."""
        return np.clip(1.0 - self.probabilities[self.background()].sum(axis=0), 0.0, 1.0)

    def named(self, text: str) -> set[int]:
        """The classes a description names ('the red cat' names 'cat')."""
        said = f" {_words(text)} "
        found = {i for i, label in enumerate(self.labels) if f" {_words(label)} " in said}
        if not found:
            known = ", ".join(self.labels)
            raise ToolError(
                "PARAMETER_INVALID",
                f"text: the segmentation model selects by class name and {text!r} names none of "
                f"its classes ({known})",
            )
        return found

    def select(self, text: str | None, regions: list[Region], threshold: float) -> np.ndarray:
        """A boolean mask of the classes the text, clicks and boxes pick, where their combined
        probability reaches `threshold`; boxes also bound it."""
        _, height, width = self.probabilities.shape
        winner = self.probabilities.argmax(axis=0)
        chosen = self.named(text) if text else set()
        dropped: set[int] = set()
        inside = np.zeros((height, width), dtype=bool)
        outside = np.zeros((height, width), dtype=bool)
        for region in regions:
            top, bottom = int(region.y0 * (height - 1)), int(region.y1 * (height - 1)) + 1
            left, right = int(region.x0 * (width - 1)), int(region.x1 * (width - 1)) + 1
            is_box = region.x1 > region.x0
            if is_box:
                (inside if region.positive else outside)[top:bottom, left:right] = True
            if not region.positive:
                if not is_box:
                    dropped.add(int(winner[top, left]))
                continue
            if not is_box:
                chosen.add(int(winner[top, left]))
            elif not text:
                chosen.add(self._main_class(winner[top:bottom, left:right]))
        chosen -= dropped
        if not chosen:
            return np.zeros((height, width), dtype=bool)
        indices = sorted(chosen)
        mask = np.isin(winner, indices) & (self.probabilities[indices].sum(axis=0) >= threshold)
        if inside.any():
            mask &= inside
        return mask & ~outside

    def _main_class(self, window: np.ndarray) -> int:
        counts = np.bincount(window.ravel(), minlength=len(self.labels))
        things = counts.copy()
        things[self.background()] = 0
        return int(things.argmax() if things.any() else counts.argmax())


class SegmentationModel:
    """The configured segmentation model, loaded on first use and shared by the process."""

    backend = BACKEND

    def __init__(self, config: LocalModelConfig) -> None:
        self._local = local_model(
            "segmentation model",
            config,
            image_model_loader("AutoModelForSemanticSegmentation", "the segmentation model"),
        )
        self.name = self._local.path.name

    async def classes(self, image: Image.Image, progress: Progress) -> ClassMap:
        progress(0.1, f"segmenting with {self.name}")
        found = await self._local.run(lambda segmenter: _class_probabilities(segmenter, image))
        progress(0.9, "writing the mask")
        return found


def mask_image(mask: np.ndarray) -> Image.Image:
    """A mask (bool or 0-1 floats) as an 8-bit greyscale image: white is selected."""
    return Image.fromarray(np.round(mask.astype(np.float32) * 255).astype(np.uint8), "L")


def cut_out(image: Image.Image, mask: np.ndarray) -> Image.Image:
    """The image with the mask as its alpha channel."""
    cut = image.convert("RGBA")
    cut.putalpha(mask_image(mask))
    return cut
