"""An optional local image classifier that screens generated images for the content filter.

Any transformers `AutoModelForImageClassification` folder works (an NSFW detector, say); the
operator names which of its labels refuse an image, so the server assumes nothing about the
model's label set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from sogni_intelligence.config import ContentClassifierConfig
from sogni_intelligence.errors import ToolError
from sogni_intelligence.media.local_model import EXTRA_HINT, local_model


@dataclass
class _Classifier:
    torch: Any
    model: Any
    processor: Any
    device: str
    dtype: Any


def _load(torch: Any, path: Path, device: str, dtype: Any) -> _Classifier:
    try:
        from transformers import AutoImageProcessor, AutoModelForImageClassification
    except ImportError as exc:
        raise ToolError(
            "MODEL_UNAVAILABLE", f"the content classifier needs transformers ({EXTRA_HINT})"
        ) from exc
    model = AutoModelForImageClassification.from_pretrained(
        str(path), local_files_only=True, dtype=dtype
    )
    processor = AutoImageProcessor.from_pretrained(str(path), local_files_only=True)
    return _Classifier(torch, model.to(device).eval(), processor, device, dtype)


def _label_key(label: str) -> str:
    return label.strip().casefold()


class ContentClassifier:
    """Says whether an image shows one of the flagged labels with enough probability."""

    def __init__(self, config: ContentClassifierConfig) -> None:
        self._model = local_model("the content classifier", config, _load)
        self.flagged = frozenset(_label_key(label) for label in config.flagged_labels)
        self.threshold = config.threshold

    async def flagged_label(self, path: Path) -> str | None:
        """The most probable flagged label of the image at `path` at or above the threshold,
        or None when the image passes."""

        def classify(classifier: _Classifier) -> str | None:
            with Image.open(path) as opened:
                image = opened.convert("RGB")
            inputs = classifier.processor(images=image, return_tensors="pt")
            pixels = inputs["pixel_values"].to(classifier.device, classifier.dtype)
            with classifier.torch.inference_mode():
                logits = classifier.model(pixel_values=pixels).logits.float()
            probabilities = logits.softmax(dim=-1)[0].cpu().tolist()
            names = classifier.model.config.id2label
            labelled = [(p, str(names.get(i, i))) for i, p in enumerate(probabilities)]
            hits = [
                (probability, label)
                for probability, label in labelled
                if probability >= self.threshold and _label_key(label) in self.flagged
            ]
            return max(hits)[1] if hits else None

        return await self._model.run(classify)
