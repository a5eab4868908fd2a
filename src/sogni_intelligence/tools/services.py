"""What the tools get from the rest of the server: remote image backends and the tools bound to
ComfyUI workflows from the settings, a text helper for the composition tools and, when a
configured LLM takes images, a vision helper for the analysis tools."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from sogni_intelligence.config import Settings
from sogni_intelligence.llm.protocol import EngineError
from sogni_intelligence.llm.registry import ModelRegistry
from sogni_intelligence.media.fetch import FetchPolicy
from sogni_intelligence.media.local_model import set_memory_budget
from sogni_intelligence.media.music.neural import MusicModel
from sogni_intelligence.media.remote_image import build_image_backends
from sogni_intelligence.media.segmentation import SegmentationModel
from sogni_intelligence.media.video.diffusion import VideoModel
from sogni_intelligence.tools.base import TextLLM, ToolError, ToolServices, VisionLLM
from sogni_intelligence.tools.catalog import CATALOG
from sogni_intelligence.tools.comfy_tools import bind_tools
from sogni_intelligence.tools.content_filter import ContentFilter


def vision_llm(registry: ModelRegistry) -> VisionLLM | None:
    """Ask the first vision-capable model about images (data URIs); None if there is none."""
    entry = next((e for e in registry.entries() if e.engine.info.vision), None)
    if entry is None:
        return None
    engine = entry.engine

    async def ask(prompt: str, images: list[str]) -> str:
        content: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
        content += [{"type": "image_url", "image_url": {"url": url}} for url in images]
        request = {"messages": [{"role": "user", "content": content}], "max_tokens": 1024}
        parts = []
        async for chunk in engine.stream(request):
            for choice in chunk.get("choices") or []:
                parts.append((choice.get("delta") or {}).get("content") or "")
        return "".join(parts)

    return ask


def text_llm(registry: ModelRegistry) -> TextLLM:
    """Generate a JSON object of a schema with the default model, greedily (temperature 0).

    The schema goes down as a `json_schema` response format, the path chat completions use, so
    the embedded engine decodes under its grammar; the reply is checked against the schema too,
    because an upstream engine may not enforce it. Failures become tool errors."""

    async def generate(
        messages: list[dict[str, Any]], schema: dict[str, Any], max_tokens: int
    ) -> Any:
        request = {
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": 0,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "result", "schema": schema, "strict": True},
            },
        }
        parts = []
        try:
            async for chunk in registry.resolve(None).engine.stream(request):
                for choice in chunk.get("choices") or []:
                    parts.append((choice.get("delta") or {}).get("content") or "")
        except EngineError as exc:
            if exc.status == 400:
                raise ToolError(
                    "PARAMETER_INVALID", f"the text model refused: {exc.message}"
                ) from exc
            raise ToolError("UNKNOWN_ERROR", f"the text model failed: {exc.message}", True) from exc
        try:
            value = json.loads("".join(parts))
            jsonschema.validate(value, schema)
        except (ValueError, jsonschema.ValidationError) as exc:
            raise ToolError(
                "UNKNOWN_ERROR", "the text model's answer did not have the expected form", True
            ) from exc
        return value

    return generate


def build_tool_services(settings: Settings, registry: ModelRegistry) -> ToolServices:
    set_memory_budget(settings.model_memory_budget_mb)
    return ToolServices(
        image_backends=build_image_backends(settings.image_backends),
        text_llm=text_llm(registry),
        vision_llm=vision_llm(registry),
        fetch_policy=FetchPolicy.from_settings(settings),
        segmentation=(
            SegmentationModel(settings.segmentation_model) if settings.segmentation_model else None
        ),
        music=MusicModel(settings.music_model) if settings.music_model else None,
        video=VideoModel(settings.video_model) if settings.video_model else None,
        bound_tools=bind_tools(settings.comfyui_tools, CATALOG),
        content_filter=ContentFilter.from_settings(settings),
    )
