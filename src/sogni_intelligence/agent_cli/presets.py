"""The `--api-workflow` presets: workflow inputs the CLI builds from a prompt and the media
flags, so that common jobs need no hand-written plan.

- `image-to-video` animates the first `-c`/`--ref` image (ending on `--ref-end`, passing
  through the `--keyframe` images); without an image it draws a keyframe first and makes the
  clip from it.
- `storyboard-video` asks the chat model for one prompt per scene (a plain completion, hosted
  tools not executed), then draws a keyframe per scene, animates each and stitches the clips.

Upload indices follow the order references are sent in (`references.FLAG_ORDER`): the n-th
image is -n.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel

from sogni_intelligence.agent_cli.inputs import UsageError
from sogni_intelligence.agent_cli.references import RefSource

Preset = Literal["image-to-video", "storyboard-video"]
PRESETS: tuple[Preset, ...] = ("image-to-video", "storyboard-video")
#: `--api-workflow` without a preset: the plan comes from `--workflow-input`.
PLAN = "plan"
DEFAULT_SCENES = 3
#: Two steps per scene and the stitch must fit the 12 steps a workflow may have.
MAX_SCENES = 5
KEYFRAME_SIZE = {"width": 1024, "height": 576}


class Keyframe(BaseModel):
    """One `--keyframe`: an image (file or URL) and when the clip passes through it."""

    source: str
    at_seconds: float


def keyframe(text: str) -> Keyframe:
    """`--keyframe FILE|URL@SECONDS` (argparse type): split at the last `@`."""
    source, at, seconds = text.rpartition("@")
    try:
        value = float(seconds)
    except ValueError:
        value = -1.0
    if not at or not source or not 0 <= value <= 60:
        raise argparse.ArgumentTypeError(
            f"{text!r}: write FILE|URL@SECONDS, with SECONDS from 0 to 60 (e.g. end.png@3.5)"
        )
    return Keyframe(source=source, at_seconds=value)


def _image_index(sources: Sequence[RefSource], flags: set[str]) -> list[int]:
    """The upload indices of the image references of `flags`, in sending order."""
    images = [ref for ref in sources if ref.kind == "image"]
    return [-(n + 1) for n, ref in enumerate(images) if ref.flag in flags]


def image_to_video(
    prompt: str, sources: Sequence[RefSource], keyframes: Sequence[Keyframe]
) -> dict[str, Any]:
    """Animate the first context or reference image; without one, draw it first."""
    starts = _image_index(sources, {"-c", "--ref"})
    ends = _image_index(sources, {"--ref-end"})
    clip: dict[str, Any] = {"prompt": prompt}
    if ends:
        clip["endImageIndex"] = ends[0]
    passes = _image_index(sources, {"--keyframe"})
    if passes:
        clip["keyframes"] = [
            {"imageIndex": index, "atSeconds": frame.at_seconds}
            for index, frame in zip(passes, keyframes, strict=True)
        ]
    if starts:
        step = {"id": "clip", "toolName": "animate_photo", "arguments": {**clip}}
        step["arguments"]["sourceImageIndex"] = starts[0]
        return {"title": "Image to video", "steps": [step]}
    draw = {
        "id": "keyframe",
        "toolName": "generate_image",
        "arguments": {"prompt": prompt, **KEYFRAME_SIZE},
    }
    animate = {
        "id": "clip",
        "toolName": "animate_photo",
        "arguments": clip,
        "dependsOn": [_index_binding("keyframe", "sourceImageIndex", "image")],
    }
    return {"title": "Generated keyframe to video", "steps": [draw, animate]}


def _index_binding(step_id: str, target: str, kind: Literal["image", "video"]) -> dict[str, Any]:
    return {
        "sourceStepId": step_id,
        "sourceArtifactIndex": 0,
        "targetArgument": target,
        "mediaType": kind,
        "transform": f"{kind}_index",
        "required": True,
    }


def storyboard_request(
    prompt: str, scenes: int, model: str | None, safe_content_filter: bool
) -> dict[str, Any]:
    """The chat completion that writes the scene prompts: JSON of a fixed shape, hosted tools
    returned rather than run."""
    schema = {
        "type": "object",
        "properties": {
            "scenes": {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": 400},
                "minItems": scenes,
                "maxItems": scenes,
            }
        },
        "required": ["scenes"],
        "additionalProperties": False,
    }
    body: dict[str, Any] = {
        "messages": [
            {
                "role": "system",
                "content": f"You write storyboards. Split the user's idea into {scenes} scenes "
                "in story order and describe each as one short visual prompt for an image.",
            },
            {"role": "user", "content": prompt},
        ],
        "stream": False,
        # Hosted tools are neither offered nor run: the answer is the storyboard itself.
        "sogni_tools": "none",
        "sogni_tool_execution": False,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "storyboard", "schema": schema, "strict": True},
        },
    }
    if model is not None:
        body["model"] = model
    if not safe_content_filter:
        body["safeContentFilter"] = False
    return body


def storyboard_scenes(completion: dict[str, Any], count: int) -> list[str]:
    """The scene prompts of the storyboard completion; a clear error when it wrote none."""
    choices = completion.get("choices") or [{}]
    content = (choices[0].get("message") or {}).get("content") or ""
    try:
        scenes = json.loads(content).get("scenes")
    except (ValueError, AttributeError):
        scenes = None
    if not isinstance(scenes, list) or not scenes:
        raise UsageError("the storyboard chat did not answer with scenes; try again or --llm-model")
    prompts = [str(scene).strip() for scene in scenes[:count] if str(scene).strip()]
    if not prompts:
        raise UsageError("the storyboard chat answered with empty scenes")
    return prompts


def storyboard_video(scenes: Sequence[str], title: str) -> dict[str, Any]:
    """A keyframe and a clip per scene, then one video of the clips in order."""
    steps: list[dict[str, Any]] = []
    for n, scene in enumerate(scenes, start=1):
        steps.append(
            {
                "id": f"scene{n}_keyframe",
                "toolName": "generate_image",
                "arguments": {"prompt": scene, **KEYFRAME_SIZE},
            }
        )
        steps.append(
            {
                "id": f"scene{n}_clip",
                "toolName": "animate_photo",
                "arguments": {"prompt": scene},
                "dependsOn": [_index_binding(f"scene{n}_keyframe", "sourceImageIndex", "image")],
            }
        )
    if len(scenes) > 1:
        steps.append(
            {
                "id": "stitch",
                "toolName": "stitch_video",
                "arguments": {},
                "dependsOn": [
                    _index_binding(f"scene{n}_clip", "videoIndices", "video")
                    for n in range(1, len(scenes) + 1)
                ],
            }
        )
    return {"title": title, "steps": steps}
