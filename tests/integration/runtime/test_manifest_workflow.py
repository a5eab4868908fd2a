"""A durable workflow written only in the hosted manifest's spellings runs here unchanged, and
its media shows each effect: two variations of an image, a clip of each, a replacement segment
spliced from the second clip, a text overlay at `top-center` inside a time window, and a
subtitle cue given with `startSeconds`/`endSeconds`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sogni_intelligence.runtime.workflows import WorkflowRuntime
from tests.integration.runtime.test_workflow_runtime import wait_terminal
from tests.integration.tools.conftest import ffprobe
from tests.integration.tools.video_helpers import differs, frame_at

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("runtime_database_url", ["sqlite"], indirect=True),
]

W, H = 384, 256


def _video_of(step: str, target: str = "sourceVideoIndex") -> dict[str, Any]:
    return {
        "sourceStepId": step,
        "targetArgument": target,
        "transform": "video_index",
        "mediaType": "video",
    }


PLAN = {
    "title": "Manifest spellings",
    "steps": [
        {
            "id": "stills",
            "toolName": "generate_image",
            "arguments": {
                "prompt": "a harbour at dawn",
                "width": W,
                "height": H,
                "numberOfVariations": 2,
                "seed": 3,
            },
        },
        *(
            {
                "id": clip,
                "toolName": "animate_photo",
                "arguments": {"prompt": "slow push in", "duration": 3, "width": W, "height": H},
                "dependsOn": [
                    {
                        "sourceStepId": "stills",
                        "sourceArtifactIndex": still,
                        "targetArgument": "sourceImageIndex",
                        "transform": "image_index",
                        "mediaType": "image",
                    }
                ],
            }
            for clip, still in (("clip_a", 0), ("clip_b", 1))
        ),
        {
            "id": "spliced",
            "toolName": "replace_video_segment",
            "arguments": {
                "startSeconds": 1,
                "endSeconds": 2,
                "replacementStartSeconds": 0,
                "replacementEndSeconds": 1,
                "keepOriginalAudio": True,
            },
            "dependsOn": [
                _video_of("clip_a", "videoIndex"),
                _video_of("clip_b", "replacementVideoIndex"),
            ],
        },
        {
            "id": "titled",
            "toolName": "overlay_video",
            "arguments": {
                "overlays": [
                    {
                        "kind": "text",
                        "position": "top-center",
                        "text": "HARBOUR",
                        "startSeconds": 0.5,
                        "endSeconds": 1.5,
                        "fontSizePct": 12,
                        "color": "#ffffff",
                        "backgroundColor": "#000000",
                    }
                ]
            },
            "dependsOn": [_video_of("spliced")],
        },
        {
            "id": "subtitled",
            "toolName": "add_subtitles",
            "arguments": {
                "cues": [{"startSeconds": 2.0, "endSeconds": 2.8, "text": "Good morning"}],
                "style": {"position": "bottom", "fontSizePct": 8},
            },
            "dependsOn": [_video_of("titled")],
        },
    ],
}


def repainted(a: Any, b: Any) -> float:
    """The share of pixels of two frame regions that differ by more than encoding noise."""
    return float((abs(a - b).max(axis=-1) > 48).mean())


async def test_a_workflow_in_manifest_spellings_shows_every_effect(
    runtime: WorkflowRuntime, tmp_path: Path
) -> None:
    record, _ = await runtime.start("key_a", PLAN, [], confirm_cost=True)
    events = await wait_terminal(runtime, record.id, timeout=240)
    final = await runtime.deps.records.get(record.id)
    assert final is not None and final.status == "completed", [e.payload for e in events]
    assets = runtime.deps.assets
    by_step: dict[str, list[Path]] = {}
    for artifact in final.data["artifacts"]:
        asset = await assets.get(artifact["id"])
        assert asset is not None
        by_step.setdefault(artifact["stepId"], []).append(await assets.local_path(asset))

    # Two variations: two different pictures, two indices.
    first, second = by_step["stills"]
    assert first.read_bytes() != second.read_bytes()

    def frame(step: str, seconds: float) -> Any:
        return frame_at(by_step[step][0], seconds, tmp_path / f"{step}-{seconds}.png")

    def length(step: str) -> float:
        return float(ffprobe(by_step[step][0])["format"]["duration"])

    # The window 1-2 s of clip_a is replaced by 0-1 s of clip_b: the length stays 3 s, and the
    # middle looks like the second clip, not the first.
    assert abs(length("spliced") - 3.0) < 0.15
    middle = frame("spliced", 1.5)
    assert differs(middle, frame("clip_b", 0.5)) < differs(middle, frame("clip_a", 1.5))

    # The title is drawn at the top, only between 0.5 and 1.5 s (re-encoding alone changes
    # few pixels by much; drawn text changes many).
    top = slice(0, H // 4), slice(W // 4, 3 * W // 4)
    inside = repainted(frame("titled", 1.0)[top], frame("spliced", 1.0)[top])
    outside = repainted(frame("titled", 2.5)[top], frame("spliced", 2.5)[top])
    assert inside > 0.05 and outside < 0.01, (inside, outside)

    # The subtitle is at the bottom, only between 2.0 and 2.8 s.
    bottom = slice(3 * H // 4, H), slice(0, W)
    inside = repainted(frame("subtitled", 2.4)[bottom], frame("titled", 2.4)[bottom])
    outside = repainted(frame("subtitled", 1.0)[bottom], frame("titled", 1.0)[bottom])
    assert inside > 0.02 and outside < 0.01, (inside, outside)
    assert abs(length("subtitled") - 3.0) < 0.15
