"""The hosted tool catalog: every tool by name, and which tools each `sogni_tools` surface
offers the LLM."""

from __future__ import annotations

from typing import Any

from sogni_intelligence.tools import (
    agent_tools,
    analysis_tools,
    audio_tools,
    composition_tools,
    image_tools,
    subtitle_tools,
    unavailable_tools,
    video_edit_tools,
    video_overlay_tools,
    video_tools,
)
from sogni_intelligence.tools.base import Tool

CATALOG: dict[str, Tool] = {
    tool.name: tool
    for family in (
        image_tools,
        video_tools,
        video_edit_tools,
        video_overlay_tools,
        subtitle_tools,
        audio_tools,
        analysis_tools,
        composition_tools,
        unavailable_tools,
        agent_tools,
    )
    for tool in family.TOOLS
}


def surface(name: str) -> list[Tool]:
    """The tools a surface (`creative-tools` or `creative-agent`) offers, in catalog order."""
    return [tool for tool in CATALOG.values() if name in tool.surfaces]


def definitions(name: str) -> list[dict[str, Any]]:
    return [tool.definition() for tool in surface(name)]
