"""A local image backend: a diffusers pipeline loaded from a directory on disk.

torch and diffusers come with the optional `diffusers` extra and are imported only when the
backend is built, so the base install works without them. The pipeline is a shared local
model (`media/local_model.py`): loaded once per process without network access, counted in
the process's model memory budget, run one job at a time in a worker thread, and dropped when
the device runs out of memory. Image-to-image and inpainting pipelines are derived from the
same components for edits, and LoRA files are applied per request (`diffusers_loras.py`).

A request's guidance and strength override the configured ones. Each image gets its own seeded
generator, so a seed always gives the same picture. Progress is reported after every denoising
step, and cancelling the awaiting task stops the worker at the next step.
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from sogni_intelligence.config import ImageBackendConfig, LocalModelConfig
from sogni_intelligence.errors import ToolError
from sogni_intelligence.media.diffusers_loras import LoraAdapters
from sogni_intelligence.media.image_request import Feature, ImageRequest
from sogni_intelligence.media.local_model import EXTRA_HINT, Stopped, local_model
from sogni_intelligence.media.progress import Progress

EDIT_STRENGTH = 0.6
#: What every pipeline family honours; edits, masks and LoRAs depend on the family.
BASE_FEATURES: frozenset[Feature] = frozenset({"seed", "negative_prompt", "guidance"})


@dataclass
class _Pipelines:
    """The loaded pipeline, its variants over the same modules, and the LoRAs loaded into them."""

    text2image: Any
    image2image: Any | None
    inpaint: Any | None
    torch: Any
    adapters: LoraAdapters = field(default_factory=LoraAdapters)

    @property
    def components(self) -> dict[str, Any]:
        """The modules, so the memory budget can count them."""
        return dict(self.text2image.components)


@dataclass
class _Inputs:
    """One request's pipeline and the arguments that differ between text-to-image and edits."""

    pipeline: Any
    arguments: dict[str, Any]
    #: The source at render size and the mask's alpha (opaque = keep) for inpainting.
    kept: tuple[Image.Image, Image.Image] | None = None


def _multiple_of_8(value: int) -> int:
    return max(8, round(value / 8) * 8)


def pipeline_features(model_path: Path) -> frozenset[Feature]:
    """What the pipeline family saved in `model_path` can do, from its model_index.json and
    diffusers' task tables (no weights are read). Without diffusers, or without a readable
    model_index.json, only the base features: the first run then says what is wrong."""
    try:
        index = json.loads((model_path / "model_index.json").read_text())
        class_name = str(index["_class_name"])
    except (OSError, ValueError, KeyError, TypeError):
        return BASE_FEATURES
    try:
        import diffusers
        from diffusers.pipelines import auto_pipeline
    except ImportError:
        return BASE_FEATURES
    tasks = (
        auto_pipeline.AUTO_TEXT2IMAGE_PIPELINES_MAPPING,
        auto_pipeline.AUTO_IMAGE2IMAGE_PIPELINES_MAPPING,
        auto_pipeline.AUTO_INPAINT_PIPELINES_MAPPING,
    )
    family = next(
        (name for task in tasks for name, cls in task.items() if cls.__name__ == class_name), None
    )
    features = set(BASE_FEATURES)
    if family in auto_pipeline.AUTO_IMAGE2IMAGE_PIPELINES_MAPPING:
        features |= {"source", "strength"}
    if family in auto_pipeline.AUTO_INPAINT_PIPELINES_MAPPING:
        features.add("mask")
    takes_loras = hasattr(getattr(diffusers, class_name, None), "load_lora_weights")
    if takes_loras and importlib.util.find_spec("peft") is not None:
        features.add("loras")
    return frozenset(features)


def _loader(backend: str) -> Callable[[Any, Path, str, Any], _Pipelines]:
    def load(torch: Any, folder: Path, device: str, dtype: Any) -> _Pipelines:
        try:
            from diffusers import (
                AutoPipelineForImage2Image,
                AutoPipelineForInpainting,
                AutoPipelineForText2Image,
            )
        except ImportError as exc:
            raise ToolError(
                "MODEL_UNAVAILABLE",
                f"image backend {backend} needs torch and diffusers, which are not installed "
                f"({EXTRA_HINT})",
            ) from exc
        text2image = AutoPipelineForText2Image.from_pretrained(
            str(folder), local_files_only=True, dtype=dtype
        ).to(device)
        variants = []
        for auto in (AutoPipelineForImage2Image, AutoPipelineForInpainting):
            try:
                variant = auto.from_pipe(text2image)
            except (ValueError, TypeError):  # a pipeline family without this variant
                variant = None
            variants.append(variant)
        for pipeline in (text2image, *variants):
            if pipeline is not None:
                pipeline.set_progress_bar_config(disable=True)
        return _Pipelines(text2image, *variants, torch=torch)

    return load


class DiffusersImageBackend:
    """Runs a diffusers text-to-image pipeline and its image-to-image and inpainting twins."""

    def __init__(self, config: ImageBackendConfig) -> None:
        assert config.model_path is not None
        self.name = config.name
        self.aliases = config.aliases
        self.model_path = Path(config.model_path).expanduser()
        self.config = config  # LoRA ids resolve by it (`media.loras.backend_lora`)
        self.steps = config.steps
        self.guidance = config.guidance
        self.timeout_s = config.timeout_s
        self.steps_done = 0  # denoising steps run so far, all requests together
        self._local = local_model(
            f"image backend {self.name}",
            LocalModelConfig(path=self.model_path, device=config.device, dtype=config.dtype),
            _loader(self.name),
        )

    @cached_property
    def features(self) -> frozenset[Feature]:
        """Read on first use, not at start-up: learning them imports diffusers (seconds)."""
        return pipeline_features(self.model_path)

    async def close(self) -> None:
        """Nothing to release here: the loaded pipeline belongs to the process's model cache."""

    async def generate(self, request: ImageRequest, progress: Progress) -> list[bytes]:
        if not (self.model_path / "model_index.json").is_file():
            raise ToolError(
                "MODEL_UNAVAILABLE",
                f"image backend {self.name}: {self.model_path} is not a diffusers pipeline "
                "directory (no model_index.json)",
            )
        loop = asyncio.get_running_loop()

        def report(fraction: float, message: str) -> None:
            # The callback runs in the worker thread; progress belongs to the event loop.
            loop.call_soon_threadsafe(progress, fraction, message)

        async with asyncio.timeout(self.timeout_s):
            return await self._local.run_stoppable(
                lambda pipelines, stop: self._render_all(pipelines, request, stop, report)
            )

    def _inputs(
        self, pipelines: _Pipelines, request: ImageRequest, width: int, height: int
    ) -> _Inputs:
        """The pipeline a request needs (text-to-image, image-to-image or inpainting) and its
        size, source, mask and strength arguments."""
        if request.source_png is None:
            return _Inputs(pipelines.text2image, {"width": width, "height": height})
        pipeline = pipelines.image2image if request.mask_png is None else pipelines.inpaint
        if pipeline is None:
            task = "edit images" if request.mask_png is None else "inpaint"
            raise ToolError("PARAMETER_INVALID", f"image backend {self.name} cannot {task}")
        with Image.open(io.BytesIO(request.source_png)) as opened:
            source = opened.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
        # At least one denoising step must remain, or the pipeline refuses to run.
        strength = max(
            1 / self.steps, EDIT_STRENGTH if request.strength is None else request.strength
        )
        arguments: dict[str, Any] = {"image": source, "strength": strength}
        if request.mask_png is None:
            return _Inputs(pipeline, arguments)
        with Image.open(io.BytesIO(request.mask_png)) as opened:
            keep = opened.convert("RGBA").getchannel("A")
        keep = keep.resize((width, height), Image.Resampling.BILINEAR)
        # The request's mask is transparent where the picture may change; diffusers repaints
        # where its mask is white.
        arguments |= {"mask_image": ImageOps.invert(keep), "width": width, "height": height}
        return _Inputs(pipeline, arguments, kept=(source, keep))

    def _render_all(
        self,
        pipelines: _Pipelines,
        request: ImageRequest,
        stop: threading.Event,
        report: Progress,
    ) -> list[bytes]:
        width, height = _multiple_of_8(request.width), _multiple_of_8(request.height)
        inputs = self._inputs(pipelines, request, width, height)
        guidance = self.guidance if request.guidance is None else request.guidance
        images = []
        with pipelines.adapters.applied(pipelines.text2image, request.lora_files):
            for i in range(request.count):
                if stop.is_set():
                    raise Stopped
                label = f"image {i + 1} of {request.count}"

                def on_step(
                    running: Any,
                    step: int,
                    timestep: Any,
                    tensors: dict,
                    i: int = i,
                    label: str = label,
                ) -> dict:
                    self.steps_done += 1
                    if stop.is_set():
                        raise Stopped
                    total = getattr(running, "num_timesteps", None) or self.steps
                    done = (i + min(1.0, (step + 1) / total)) / request.count
                    report(min(0.99, done), label)
                    return tensors

                arguments: dict[str, Any] = {
                    "prompt": request.prompt,
                    "num_inference_steps": self.steps,
                    "guidance_scale": guidance,
                    "generator": pipelines.torch.Generator("cpu").manual_seed(
                        (request.seed + i) % 2**64
                    ),
                    "callback_on_step_end": on_step,
                    **inputs.arguments,
                }
                if request.negative_prompt and guidance > 1:
                    arguments["negative_prompt"] = request.negative_prompt
                images.append(self._png(inputs.pipeline(**arguments).images[0], inputs, request))
        return images

    @staticmethod
    def _png(picture: Image.Image, inputs: _Inputs, request: ImageRequest) -> bytes:
        """The result at the requested size; an inpainted one keeps the source exactly where the
        mask is opaque (the latents' round trip through the VAE would otherwise alter it)."""
        if inputs.kept is not None:
            source, keep = inputs.kept
            picture = Image.composite(source, picture.convert("RGB"), keep)
        if picture.size != (request.width, request.height):
            picture = picture.resize((request.width, request.height), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        picture.save(out, "PNG")
        return out.getvalue()
