"""Remote image backends: any OpenAI-compatible image API, and ComfyUI.

Both take the same request as the procedural renderer and return encoded image bytes, so the
image tools do not care which one runs. Each backend names the optional request features it
honours (`features`); the tools warn about the rest. Network failures become tool errors the
LLM can read.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx

from sogni_intelligence.config import ImageBackendConfig
from sogni_intelligence.errors import ToolError
from sogni_intelligence.media.comfyui import ComfyUIClient, fill_workflow
from sogni_intelligence.media.diffusers_backend import DiffusersImageBackend
from sogni_intelligence.media.image_request import Feature, ImageRequest, RemoteImageBackend
from sogni_intelligence.media.progress import Progress

# PNG is the API's default, so it is not sent (servers that predate the field accept the call).
_API_FORMATS = {"jpg": "jpeg", "jpeg": "jpeg", "webp": "webp"}


def _failure(name: str, exc: Exception) -> ToolError:
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return ToolError("PROVIDER_TIMEOUT", f"image backend {name} timed out", retryable=True)
    return ToolError("GPU_WORKER_FAILED", f"image backend {name} failed: {exc}", retryable=True)


class OpenAIImageBackend:
    """`POST /images/generations` (or `/images/edits` with a source image and optional mask),
    base64 results. GPT Image options go along as the API's quality, background,
    output_format and output_compression fields."""

    features: frozenset[Feature] = frozenset(
        {"source", "mask", "gpt_quality", "gpt_background", "output_compression"}
    )

    def __init__(self, config: ImageBackendConfig) -> None:
        self.name = config.name
        self.aliases = config.aliases
        self.model = config.model
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._client = httpx.AsyncClient(
            base_url=str(config.base_url).rstrip("/"), headers=headers, timeout=config.timeout_s
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def generate(self, request: ImageRequest, progress: Progress) -> list[bytes]:
        fields: dict[str, Any] = {
            "prompt": request.prompt,
            "n": request.count,
            "size": f"{request.width}x{request.height}",
            "response_format": "b64_json",
        }
        if self.model:
            fields["model"] = self.model
        optional = {
            "quality": request.gpt_quality,
            "background": request.gpt_background,
            "output_compression": request.output_compression,
            "output_format": _API_FORMATS.get(request.output_format or "png"),
        }
        fields.update({k: v for k, v in optional.items() if v is not None})
        try:
            if request.source_png is None:
                response = await self._client.post("/images/generations", json=fields)
            else:
                form = {k: str(v) for k, v in fields.items()}
                files = {"image": ("source.png", request.source_png, "image/png")}
                if request.mask_png is not None:
                    files["mask"] = ("mask.png", request.mask_png, "image/png")
                response = await self._client.post("/images/edits", data=form, files=files)
        except httpx.HTTPError as exc:
            raise _failure(self.name, exc) from exc
        if response.status_code >= 400:
            raise ToolError(
                "GPU_WORKER_FAILED" if response.status_code >= 500 else "PARAMETER_INVALID",
                f"image backend {self.name} answered {response.status_code}: {response.text[:300]}",
                retryable=response.status_code >= 500,
            )
        try:
            items = response.json()["data"]
            images = [base64.b64decode(item["b64_json"]) for item in items]
        except (ValueError, KeyError, TypeError) as exc:
            raise ToolError(
                "GPU_WORKER_FAILED", f"image backend {self.name} sent no images"
            ) from exc
        progress(1.0, None)
        return images


class ComfyUIBackend:
    """Queue a workflow, follow its progress over the websocket, read the history, download
    the outputs. The workflow takes prompts, seed and size; a negative prompt only where it has
    a `{{negative_prompt}}` placeholder."""

    def __init__(self, config: ImageBackendConfig) -> None:
        assert config.workflow is not None and config.base_url is not None
        self.name = config.name
        self.aliases = config.aliases
        text = Path(config.workflow).expanduser().read_text()
        self.workflow = json.loads(text)
        self.features: frozenset[Feature] = frozenset(
            {"seed", "negative_prompt"} if "{{negative_prompt}}" in text else {"seed"}
        )
        self._comfy = ComfyUIClient(config.base_url, config.timeout_s, f"image backend {self.name}")

    async def close(self) -> None:
        await self._comfy.close()

    async def generate(self, request: ImageRequest, progress: Progress) -> list[bytes]:
        images: list[bytes] = []
        for i in range(request.count):
            values = {
                "prompt": request.prompt,
                "negative_prompt": request.negative_prompt or "",
                "seed": request.seed + i,
                "width": request.width,
                "height": request.height,
            }
            images += await self._comfy.run(fill_workflow(self.workflow, values), progress)
        return images


def build_image_backends(configs: list[ImageBackendConfig]) -> dict[str, RemoteImageBackend]:
    backends: dict[str, RemoteImageBackend] = {}
    for config in configs:
        if config.kind == "openai":
            backends[config.name] = OpenAIImageBackend(config)
        elif config.kind == "comfyui":
            backends[config.name] = ComfyUIBackend(config)
        else:
            backends[config.name] = DiffusersImageBackend(config)
    return backends
