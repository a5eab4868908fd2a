"""What the composition tools share: asking the default text model for a JSON object of a
schema (the grammar holds the model to it while it decodes), bounding its answer, cleaning the
text it writes, and the limits that hold whatever the model says.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import WithJsonSchema

from sogni_intelligence.media.models import (
    IMAGE_MODELS,
    MUSIC_MODELS,
    SPEECH_MODELS,
    VIDEO_MODELS,
    resolve_model,
)
from sogni_intelligence.tools.base import (
    ToolContext,
    ToolError,
)

# (messages, JSON schema, max_tokens) -> the parsed object, valid against the schema.

COST = 0.1
AGENT_ONLY = frozenset({"creative-agent"})
MAX_TEXT = 4000
VIDEO_SHORT_SIDE = 720  # one capacity unit is about one second of 720p video
CLIP_SECONDS = (2.0, 30.0)  # what animate_photo accepts per clip
DEFAULT_SECONDS_PER_SCENE = 5.0
MUSIC_SECONDS = (10.0, 600.0)

AspectRatio = Literal["1:1", "4:3", "3:4", "16:9", "9:16", "21:9"]
IMAGE_SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "4:3": (1024, 768),
    "3:4": (768, 1024),
    "16:9": (1024, 576),
    "9:16": (576, 1024),
    "21:9": (1024, 440),
}
KEYSCALES = (
    "C major",
    "G major",
    "D major",
    "A major",
    "E major",
    "F major",
    "Bb major",
    "Eb major",
    "A minor",
    "E minor",
    "B minor",
    "D minor",
    "G minor",
    "C minor",
    "F# minor",
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
REFERENCE_TOKEN = re.compile(r"@(Image|Video|Audio)(\d+)")


# --- talking to the text model ---------------------------------------------------------------


def string_schema(max_length: int) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_length}


def object_schema(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}


def titled_scenes_schema(
    count: int, scene: dict[str, Any], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A title and exactly `count` scenes of the `scene` fields (plus `extra` top-level keys)."""
    scenes = {"type": "array", "minItems": count, "maxItems": count, "items": object_schema(scene)}
    return object_schema({"title": string_schema(80), "scenes": scenes, **(extra or {})})


def even_share(total: int, count: int, most: int) -> int:
    """Length cap of one of `count` repeated strings: at most `most`, and together about
    `total`, so a long list still fits a small context slot (2048 tokens by default)."""
    return max(40, min(most, total // count))


def _json_bound(schema: Mapping[str, Any]) -> int:
    """The longest compact JSON text of `schema` in characters (strings counted unescaped)."""
    if "enum" in schema:
        return max(len(json.dumps(value)) for value in schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        return int(schema["maxLength"]) + 2
    if kind == "integer":
        return max(len(str(schema["minimum"])), len(str(schema["maximum"])))
    if kind == "array":
        return 2 + int(schema["maxItems"]) * (_json_bound(schema["items"]) + 1)
    properties = schema["properties"]
    return 2 + sum(len(name) + 4 + _json_bound(sub) for name, sub in properties.items())


async def ask_text_model(
    ctx: ToolContext, instruction: str, schema: dict[str, Any]
) -> dict[str, Any]:
    """The text model's answer to `instruction` as an object of `schema`.

    The token cap is twice the longest possible answer: a token is at least one character
    except for some non-Latin text, and decoding stops as soon as the grammar is complete."""
    generate = ctx.services.text_llm
    if generate is None:
        raise ToolError("MODEL_UNAVAILABLE", "no text model is configured for composition tools")
    messages = [
        {
            "role": "system",
            "content": "You are a creative assistant for image, video and music generation. "
            "Answer only with the requested JSON object.",
        },
        {"role": "user", "content": instruction},
    ]
    return await generate(messages, schema, 2 * _json_bound(schema) + 16)


def clean_text(text: Any, fallback: str, one_line: bool = True) -> str:
    """Model text without control characters and stray whitespace; `fallback` when nothing is
    left, so a prompt handed to a media tool is never empty."""
    value = _CONTROL.sub(" ", str(text))
    if one_line:
        value = " ".join(value.split())
    else:
        value = "\n".join(" ".join(line.split()) for line in value.splitlines()).strip()
    return value.strip() or fallback


def with_style(prompt: str, style: str | None) -> str:
    """Append the requested style unless the text already says it: the style must reach the
    media model even when the text model ignores it."""
    if not style or style.lower() in prompt.lower():
        return prompt
    return f"{prompt.rstrip(' ,;.')}, {style}"


def clock_time(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def joined_lines(*parts: str | None) -> str:
    return "\n".join(part for part in parts if part)


def check_model(table: Mapping[str, str | None], name: str, kind: str, argument: str) -> None:
    """Fail closed on a model id that is not an exact known selector, naming the argument."""
    try:
        resolve_model(dict(table), name, kind)
    except ToolError as exc:
        raise ToolError(exc.error_type, f"{argument}: {exc.message}") from exc


def runnable_models(table: Mapping[str, str | None]) -> list[str]:
    """The ids of `table` that `check_model` lets through: those this server runs."""
    return sorted(name for name, backend in table.items() if backend)


def model_id_schema(table: Mapping[str, str | None]) -> WithJsonSchema:
    """A model id as the schema shows it: one of `runnable_models(table)`, so that a call
    grammar cannot write an id the tool would refuse."""
    return WithJsonSchema({"type": "string", "enum": runnable_models(table)})


ALL_MEDIA_MODELS: dict[str, str | None] = {
    **IMAGE_MODELS,
    **VIDEO_MODELS,
    **MUSIC_MODELS,
    **SPEECH_MODELS,
}
