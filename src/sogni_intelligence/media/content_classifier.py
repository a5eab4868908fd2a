"""An optional local image classifier that screens generated images for the content filter.

Any transformers `AutoModelForImageClassification` folder works (an NSFW detector, say); the
operator names which of its labels refuse an image, so the server assumes nothing about the
model's label set.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from sogni_intelligence.config import ContentClassifierConfig
from sogni_intelligence.media.local_model import local_model
from sogni_intelligence.media.transformers_models import ImageModel, image_model_loader


def _label_key(label: str) -> str:
    return label.strip().casefold()


class ContentClassifier:
    """Says whether an image shows one of the flagged labels with enough probability."""

    def __init__(self, config: ContentClassifierConfig) -> None:
        self._model = local_model(
            "the content classifier",
            config,
            image_model_loader("AutoModelForImageClassification", "the content classifier"),
        )
        self.flagged = frozenset(_label_key(label) for label in config.flagged_labels)
        self.threshold = config.threshold

    async def flagged_label(self, path: Path) -> str | None:
        """The most probable flagged label of the image at `path` at or above the threshold,
        or None when the image passes."""

        def classify(classifier: ImageModel) -> str | None:
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
