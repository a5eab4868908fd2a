"""The tools a durable workflow step may call, and the DBOS queue each media family runs on.

Every family but the composition tools (they answer the LLM with text and plans, and compose
the plans that call these) is listed here, below the plan validator that needs it; the full
catalog (`tools.catalog`) adds the composition tools on top.
"""

from __future__ import annotations

from types import ModuleType

from sogni_intelligence.config import QueueName
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

# Each media family's queue. Tools without an installed model answer at once, so they go to
# the light analysis queue.
FAMILY_QUEUES: tuple[tuple[ModuleType, QueueName], ...] = (
    (image_tools, "image"),
    (video_tools, "video"),
    (video_edit_tools, "video"),
    (video_overlay_tools, "video"),
    (subtitle_tools, "video"),
    (audio_tools, "audio"),
    (analysis_tools, "analysis"),
    (unavailable_tools, "analysis"),
)
_QUEUE_OF: dict[str, QueueName] = {
    tool.name: queue for family, queue in FAMILY_QUEUES for tool in family.TOOLS
}

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


def queue_for(tool_name: str) -> QueueName:
    """The queue a media tool's jobs run on; a KeyError for a tool that is not a media tool."""
    return _QUEUE_OF[tool_name]
