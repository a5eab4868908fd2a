"""What the tools get from the rest of the server: remote image backends from the settings and,
when a configured LLM takes images, a vision helper for the analysis tools."""

from __future__ import annotations

from typing import Any

from sogni_intelligence.config import Settings
from sogni_intelligence.llm.registry import ModelRegistry
from sogni_intelligence.media.remote_image import build_image_backends
from sogni_intelligence.tools.analysis_tools import VisionLLM


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


def build_tool_services(settings: Settings, registry: ModelRegistry) -> dict[str, Any]:
    services: dict[str, Any] = {"image_backends": build_image_backends(settings.image_backends)}
    vision = vision_llm(registry)
    if vision is not None:
        services["vision_llm"] = vision
    return services
