"""The hosted tool catalog: every tool by name, and which tools each `sogni_tools` surface
offers the LLM."""

from __future__ import annotations

from typing import Any

from sogni_intelligence.tools import composition_tools
from sogni_intelligence.tools.base import Tool
from sogni_intelligence.tools.steps import STEP_CANDIDATES

#: Every tool by name: the tools a workflow step may call, and the composition tools that
#: write plans of them.
CATALOG: dict[str, Tool] = {
    **STEP_CANDIDATES,
    **{tool.name: tool for tool in composition_tools.TOOLS},
}


def surface(name: str) -> list[Tool]:
    """The tools a surface (`creative-tools` or `creative-agent`) offers, in catalog order."""
    return [tool for tool in CATALOG.values() if name in tool.surfaces]


def definitions(name: str) -> list[dict[str, Any]]:
    return [tool.definition() for tool in surface(name)]
