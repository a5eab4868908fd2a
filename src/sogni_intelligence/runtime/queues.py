"""The DBOS queues workflow steps run on: one per kind of media work, so a GPU machine can run
`sogni-intelligence worker --queues image,video` while API processes only enqueue."""

from __future__ import annotations

from collections.abc import Mapping

from dbos import DBOS

from sogni_intelligence.config import QUEUE_NAMES, QueueName
from sogni_intelligence.tools import (
    analysis_tools,
    audio_tools,
    image_tools,
    subtitle_tools,
    unavailable_tools,
    video_edit_tools,
    video_overlay_tools,
    video_tools,
)

# Tools without an installed model answer at once, so they go to the light analysis queue.
_FAMILY_QUEUES = (
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
    tool.name: queue  # type: ignore[misc]
    for family, queue in _FAMILY_QUEUES
    for tool in family.TOOLS
}


def queue_for(tool_name: str) -> QueueName:
    return _QUEUE_OF[tool_name]


async def register_queues(concurrency: Mapping[str, int], poll_s: float) -> None:
    """Declare every queue (after DBOS is launched); `concurrency` is per worker process."""
    for name in QUEUE_NAMES:
        await DBOS.register_queue_async(
            name, worker_concurrency=concurrency.get(name, 1), polling_interval_sec=poll_s
        )
