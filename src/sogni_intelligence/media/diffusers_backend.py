"""A local image backend: a diffusers pipeline loaded from a directory on disk.

torch and diffusers come with the optional `diffusers` extra and are imported only when the
backend first runs, so the base install works without them. The pipeline is loaded once (no
network: `local_files_only`); an image-to-image pipeline is derived from the same components
for edits. A request's guidance and img2img strength override the configured ones. Each image
runs in a worker thread with its own seeded generator, so a seed always gives the same picture.
Progress is reported after every denoising step, and cancelling the awaiting task stops the
worker at the next step.
"""

from __future__ import annotations

import asyncio
import io
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sogni_intelligence.config import ImageBackendConfig
from sogni_intelligence.errors import ToolError
from sogni_intelligence.media.image_request import Feature, ImageRequest
from sogni_intelligence.media.local_model import is_out_of_memory
from sogni_intelligence.media.progress import Progress

EDIT_STRENGTH = 0.6


class _Stopped(Exception):
    """Raised inside the step callback to abandon a run whose caller went away."""


@dataclass
class _Pipelines:
    text2image: Any
    image2image: Any | None
    torch: Any


def _multiple_of_8(value: int) -> int:
    return max(8, round(value / 8) * 8)


class DiffusersImageBackend:
    """Runs a diffusers text-to-image pipeline (and its image-to-image twin) in-process."""

    features: frozenset[Feature] = frozenset(
        {"seed", "negative_prompt", "source", "strength", "guidance"}
    )

    def __init__(self, config: ImageBackendConfig) -> None:
        assert config.model_path is not None
        self.name = config.name
        self.aliases = config.aliases
        self.model_path = Path(config.model_path).expanduser()
        self.device = config.device
        self.steps = config.steps
        self.guidance = config.guidance
        self.timeout_s = config.timeout_s
        self.steps_done = 0  # denoising steps run so far, all requests together
        self._pipelines: _Pipelines | None = None
        self._load_lock = threading.Lock()
        # One run at a time: a pipeline's scheduler keeps per-run state.
        self._run_lock = asyncio.Lock()

    async def close(self) -> None:
        self._pipelines = None

    async def generate(self, request: ImageRequest, progress: Progress) -> list[bytes]:
        async with asyncio.timeout(self.timeout_s):
            pipelines = await asyncio.to_thread(self._load)
            async with self._run_lock:
                return await self._run_in_thread(pipelines, request, progress)

    async def _run_in_thread(
        self, pipelines: _Pipelines, request: ImageRequest, progress: Progress
    ) -> list[bytes]:
        loop = asyncio.get_running_loop()
        stop = threading.Event()

        def report(fraction: float, message: str) -> None:
            # The callback runs in the worker thread; progress belongs to the event loop.
            loop.call_soon_threadsafe(progress, fraction, message)

        worker = asyncio.ensure_future(
            asyncio.to_thread(self._render_all, pipelines, request, stop, report)
        )
        try:
            return await asyncio.shield(worker)
        except asyncio.CancelledError:
            # Tell the worker to stop at its next step and wait for it, so that no thread goes
            # on using the pipeline (and the lock is not released under a running job).
            stop.set()
            await asyncio.wait([worker])
            if not worker.cancelled():
                worker.exception()  # retrieved, so asyncio does not log it as never retrieved
            raise

    def _load(self) -> _Pipelines:
        with self._load_lock:
            if self._pipelines is None:
                self._pipelines = self._load_pipelines()
            return self._pipelines

    def _load_pipelines(self) -> _Pipelines:
        try:
            import torch
            from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image
        except ImportError as exc:
            raise ToolError(
                "MODEL_UNAVAILABLE",
                f"image backend {self.name} needs torch and diffusers, which are not installed "
                "(pip install 'sogni-intelligence[diffusers]')",
            ) from exc
        if not (self.model_path / "model_index.json").is_file():
            raise ToolError(
                "MODEL_UNAVAILABLE",
                f"image backend {self.name}: {self.model_path} is not a diffusers pipeline "
                "directory (no model_index.json)",
            )
        try:
            text2image = AutoPipelineForText2Image.from_pretrained(
                str(self.model_path), local_files_only=True
            ).to(self.device)
        except (OSError, ValueError, RuntimeError, TypeError) as exc:
            raise ToolError(
                "MODEL_UNAVAILABLE",
                f"image backend {self.name} could not load {self.model_path}: {exc}",
            ) from exc
        text2image.set_progress_bar_config(disable=True)
        try:
            image2image = AutoPipelineForImage2Image.from_pipe(text2image)
            image2image.set_progress_bar_config(disable=True)
        except (ValueError, TypeError):  # a pipeline family without an image-to-image variant
            image2image = None
        return _Pipelines(text2image, image2image, torch)

    def _render_all(
        self,
        pipelines: _Pipelines,
        request: ImageRequest,
        stop: threading.Event,
        report: Progress,
    ) -> list[bytes]:
        from PIL import Image

        source = None
        pipe = pipelines.text2image
        if request.source_png is not None:
            if pipelines.image2image is None:
                raise ToolError(
                    "PARAMETER_INVALID", f"image backend {self.name} cannot edit images"
                )
            pipe = pipelines.image2image
            with Image.open(io.BytesIO(request.source_png)) as opened:
                source = opened.convert("RGB")
        width, height = _multiple_of_8(request.width), _multiple_of_8(request.height)
        guidance = self.guidance if request.guidance is None else request.guidance
        # At least one denoising step must remain, or the pipeline refuses to run.
        strength = max(
            1 / self.steps, EDIT_STRENGTH if request.strength is None else request.strength
        )
        if source is not None:
            source = source.resize((width, height), Image.Resampling.LANCZOS)
        images = []
        for i in range(request.count):
            if stop.is_set():
                raise _Stopped
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
                    raise _Stopped
                total = getattr(running, "num_timesteps", None) or self.steps
                done = (i + min(1.0, (step + 1) / total)) / request.count
                report(min(0.99, done), label)
                return tensors

            kwargs: dict[str, Any] = {
                "prompt": request.prompt,
                "num_inference_steps": self.steps,
                "guidance_scale": guidance,
                "generator": pipelines.torch.Generator("cpu").manual_seed(
                    (request.seed + i) % 2**64
                ),
                "callback_on_step_end": on_step,
            }
            if request.negative_prompt and guidance > 1:
                kwargs["negative_prompt"] = request.negative_prompt
            if source is None:
                kwargs.update(width=width, height=height)
            else:
                kwargs.update(image=source, strength=strength)
            try:
                picture = pipe(**kwargs).images[0]
            except _Stopped:
                raise
            except (RuntimeError, ValueError, TypeError) as exc:
                if is_out_of_memory(exc):
                    self._pipelines = None  # freed once this run lets go; the next call reloads
                raise ToolError(
                    "GPU_WORKER_FAILED", f"image backend {self.name} failed: {exc}", retryable=True
                ) from exc
            if picture.size != (request.width, request.height):
                picture = picture.resize((request.width, request.height), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            picture.save(out, "PNG")
            images.append(out.getvalue())
        return images
