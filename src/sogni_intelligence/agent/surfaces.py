"""Which hosted tools a request's `sogni_tools` value puts in front of the LLM."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from sogni_intelligence.tools.base import Tool
from sogni_intelligence.tools.catalog import CATALOG, surface

SurfaceName = Literal["creative-tools", "creative-agent"]
SogniTools = bool | Literal["creative-tools", "rich", "creative-agent", "none"] | None


def surface_of(value: SogniTools) -> SurfaceName | None:
    """Omitted, true, "creative-tools" and "rich" mean the creative set; false and "none"
    mean no hosted tools."""
    if value is None or value is True or value in ("creative-tools", "rich"):
        return "creative-tools"
    if value == "creative-agent":
        return "creative-agent"
    return None


def hosted_tools(
    value: SogniTools, client_names: set[str], exposed: Mapping[str, Tool] | None = None
) -> dict[str, Tool]:
    """The surface's tools by name, and on `creative-agent` the caller's `exposed` template
    tools; a client tool of the same name wins over ours."""
    name = surface_of(value)
    if name is None:
        return {}
    offered = [*surface(name), *((exposed or {}).values() if name == "creative-agent" else ())]
    return {tool.name: tool for tool in offered if tool.name not in client_names}


def tools_named(names: list[str]) -> dict[str, Tool]:
    """The hosted tools a stored turn had, by name (names no longer known are dropped)."""
    return {name: CATALOG[name] for name in names if name in CATALOG}
