"""Loading transformers models from a local folder for `local_model`: the import that says
which extra is missing, and the image models (a model and its image processor) that the
segmentation tools and the content classifier share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sogni_intelligence.errors import ToolError
from sogni_intelligence.media.local_model import EXTRA_HINT, Loader


def import_transformers(what: str) -> Any:
    try:
        import transformers
    except ImportError as exc:
        raise ToolError("MODEL_UNAVAILABLE", f"{what} needs transformers ({EXTRA_HINT})") from exc
    return transformers


@dataclass
class ImageModel:
    """A vision model in eval mode on its device, with the processor that prepares its input."""

    torch: Any
    model: Any
    processor: Any
    device: str
    dtype: Any


def image_model_loader(auto_class: str, what: str) -> Loader[ImageModel]:
    """A loader of the transformers `auto_class` (e.g. AutoModelForSemanticSegmentation)."""

    def load(torch: Any, path: Path, device: str, dtype: Any) -> ImageModel:
        transformers = import_transformers(what)
        model = getattr(transformers, auto_class).from_pretrained(
            str(path), local_files_only=True, dtype=dtype
        )
        processor = transformers.AutoImageProcessor.from_pretrained(
            str(path), local_files_only=True
        )
        return ImageModel(torch, model.to(device).eval(), processor, device, dtype)

    return load
