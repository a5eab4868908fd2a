"""The tools a durable workflow step may call.

Every family but the composition tools (they answer the LLM with text and plans, and compose
the plans that call these) is listed here, below the plan validator that needs it; the full
catalog (`tools.catalog`) adds the composition tools on top. Each tool names its own queue.
"""

from __future__ import annotations

from sogni_intelligence.tools import (
    agent_tools,
    analysis_tools,
    audio_tools,
    image_tools,
    subtitle_tools,
    unavailable_tools,
    video_edit_tools,
    video_overlay_tools,
    video_tools,
)
from sogni_intelligence.tools.base import Tool

#: The tools by name a workflow step may name: the media families, and the agent's control and
#: asset tools.
STEP_CANDIDATES: dict[str, Tool] = {
    tool.name: tool
    for family in (
        image_tools,
        video_tools,
        video_edit_tools,
        video_overlay_tools,
        subtitle_tools,
        audio_tools,
        analysis_tools,
        unavailable_tools,
        agent_tools,
    )
    for tool in family.TOOLS
}
