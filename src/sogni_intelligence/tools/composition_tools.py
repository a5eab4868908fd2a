"""Composition tools: they write text and plans for the creative agent instead of making media.

Each one asks the default text model (the `text_llm` service) for a JSON object whose schema is
enforced by a grammar while it decodes, so even a tiny model returns every documented key. What
has to be right no matter how good the model is lives here in code: the step graph and cost of a
composed workflow, the section layout and timings of lyrics and instrumentals, and the ranges
of suggested music parameters. The model only supplies wording.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from sogni_intelligence.errors import ServiceError
from sogni_intelligence.media.models import (
    IMAGE_MODELS,
    MUSIC_MODELS,
    SPEECH_MODELS,
    VIDEO_MODELS,
    resolve_model,
)
from sogni_intelligence.tools.base import (
    CREATIVE,
    Tool,
    ToolArgs,
    ToolContext,
    ToolError,
    ToolOutput,
    tool_family,
)
from sogni_intelligence.tools.plans import MAX_STEPS, normalise_plan, step_costs
from sogni_intelligence.tools.templates import parse_template

# (messages, JSON schema, max_tokens) -> the parsed object, valid against the schema.

COST = 0.1
AGENT_ONLY = frozenset({"creative-agent"})
MAX_TEXT = 4000
MAX_WORKFLOW_STEPS = MAX_STEPS
VIDEO_SHORT_SIDE = 720  # one capacity unit is about one second of 720p video
CLIP_SECONDS = (2.0, 30.0)  # what animate_photo accepts per clip
DEFAULT_SECONDS_PER_SCENE = 5.0
MUSIC_SECONDS = (10.0, 600.0)

AspectRatio = Literal["1:1", "4:3", "3:4", "16:9", "9:16", "21:9"]
_IMAGE_SIZES: dict[str, tuple[int, int]] = {
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
_REFERENCE_TOKEN = re.compile(r"@(Image|Video|Audio)(\d+)")


# --- talking to the text model ---------------------------------------------------------------


def _string(max_length: int) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_length}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}


def _share(total: int, count: int, most: int) -> int:
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


async def _generate(ctx: ToolContext, instruction: str, schema: dict[str, Any]) -> dict[str, Any]:
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


def _clean(text: Any, fallback: str, one_line: bool = True) -> str:
    """Model text without control characters and stray whitespace; `fallback` when nothing is
    left, so a prompt handed to a media tool is never empty."""
    value = _CONTROL.sub(" ", str(text))
    if one_line:
        value = " ".join(value.split())
    else:
        value = "\n".join(" ".join(line.split()) for line in value.splitlines()).strip()
    return value.strip() or fallback


def _with_style(prompt: str, style: str | None) -> str:
    """Append the requested style unless the text already says it: the style must reach the
    media model even when the text model ignores it."""
    if not style or style.lower() in prompt.lower():
        return prompt
    return f"{prompt.rstrip(' ,;.')}, {style}"


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def _lines(*parts: str | None) -> str:
    return "\n".join(part for part in parts if part)


def _check_model(table: Mapping[str, str | None], name: str, kind: str, argument: str) -> None:
    """Fail closed on a model id that is not an exact known selector, naming the argument."""
    try:
        resolve_model(dict(table), name, kind)
    except ToolError as exc:
        raise ToolError(exc.error_type, f"{argument}: {exc.message}") from exc


ALL_MEDIA_MODELS: dict[str, str | None] = {
    **IMAGE_MODELS,
    **VIDEO_MODELS,
    **MUSIC_MODELS,
    **SPEECH_MODELS,
}


# --- enhance_prompt ----------------------------------------------------------------------------


class PromptAsset(ToolArgs):
    id: str | None = Field(None, max_length=200, description="Your id for the asset.")
    label: str | None = Field(None, max_length=200, description="A short name for it.")
    media_type: Literal["image", "video", "audio"] = Field(description="What kind of media it is.")
    role: (
        Literal[
            "first_frame",
            "last_frame",
            "reference",
            "identity",
            "style",
            "motion",
            "audio",
            "source_video",
        ]
        | None
    ) = Field(None, description="How the destination model should use it.")
    url: str | None = Field(None, max_length=4096, description="Where it lives (informational).")


class EnhancePromptArgs(ToolArgs):
    prompt: str = Field(min_length=1, max_length=MAX_TEXT, description="The idea to improve.")
    target_output: Literal["image_prompt", "video_prompt", "edit_prompt", "model_prompt"] = Field(
        description="What the prompt is for: a new image, a video, an image edit, or any model."
    )
    destination_model: str = Field(
        description="Exact id of the model that will receive the prompt (e.g. z-turbo, ltx25)."
    )
    destination_tool: str | None = Field(None, description="Tool that will use the prompt.")
    style_prompt: str | None = Field(None, max_length=1000, description="Look or style to add.")
    prompt_mode: Literal["auto", "preserve", "expand", "compress", "validate", "payload"] = Field(
        "auto",
        description="auto/expand: rewrite with detail; compress: shorten; preserve: keep the "
        "wording; validate: only check reference tokens; payload: rewrite and also return "
        "ready-made tool arguments.",
    )
    duration_seconds: float | None = Field(None, ge=1, le=300, description="Clip length.")
    aspect_ratio: str | None = Field(None, max_length=16, description="e.g. 16:9.")
    assets: list[PromptAsset] | None = Field(
        None, max_length=50, description="Media the prompt may refer to (@Image1, @Video1...)."
    )
    constraints: dict[str, Any] | None = Field(None, description="Extra rules, as key/value.")
    prompting_type: str | None = Field(None, description="Deprecated; ignored.")
    model_title: str | None = Field(None, description="Deprecated; ignored.")


_PROMPT_TABLES: dict[str, tuple[Mapping[str, str | None], str]] = {
    "image_prompt": (IMAGE_MODELS, "image"),
    "edit_prompt": (IMAGE_MODELS, "image"),
    "video_prompt": (VIDEO_MODELS, "video"),
    "model_prompt": (ALL_MEDIA_MODELS, "destination"),
}
_PROMPT_PURPOSE = {
    "image_prompt": "an image generation prompt",
    "edit_prompt": "an image editing instruction",
    "video_prompt": "a video generation prompt describing motion and camera",
    "model_prompt": "a prompt",
}


def _model_argument(model: str) -> str:
    """The argument name that carries a model id in the media tools."""
    return "videoModel" if model in VIDEO_MODELS else "model"


def _reference_issues(prompt: str, assets: list[PromptAsset]) -> list[str]:
    """Reference tokens (@Image2…) that point past the assets of their type."""
    counts = {
        kind: sum(a.media_type == kind for a in assets) for kind in ("image", "video", "audio")
    }
    issues = []
    for kind, number in _REFERENCE_TOKEN.findall(prompt):
        have = counts[kind.lower()]
        if int(number) < 1 or int(number) > have:
            issues.append(f"@{kind}{number} refers to a missing {kind.lower()} (there are {have})")
    return list(dict.fromkeys(issues))


async def enhance_prompt(args: EnhancePromptArgs, ctx: ToolContext) -> ToolOutput:
    table, kind = _PROMPT_TABLES[args.target_output]
    _check_model(table, args.destination_model, kind, "destination_model")
    original = args.prompt.strip()
    prompt = original
    if args.prompt_mode not in ("preserve", "validate"):
        compress = args.prompt_mode == "compress"
        limit = max(40, min(300, len(original) // 2)) if compress else 800
        details = [
            f"for the model {args.destination_model}",
            f"lasting {args.duration_seconds:g} seconds" if args.duration_seconds else None,
            f"in aspect ratio {args.aspect_ratio}" if args.aspect_ratio else None,
            f"in this style: {args.style_prompt}" if args.style_prompt else None,
        ]
        assets = [
            f"@{a.media_type.capitalize()}{i} = {a.label or a.role or a.media_type}"
            for media in ("image", "video", "audio")
            for i, a in enumerate((a for a in args.assets or [] if a.media_type == media), 1)
        ]
        instruction = _lines(
            f"Idea: {original}",
            f"Write this idea as {_PROMPT_PURPOSE[args.target_output]} "
            + ", ".join(d for d in details if d)
            + ".",
            "Keep it short and plain." if compress else "Add concrete visual detail.",
            f"Reference media: {'; '.join(assets)}." if assets else None,
            f"Rules: {json.dumps(args.constraints)}" if args.constraints else None,
        )
        answer = await _generate(ctx, instruction, _object({"prompt": _string(limit)}))
        prompt = _clean(answer["prompt"], original)
        if args.target_output != "model_prompt" and not compress:
            prompt = _with_style(prompt, args.style_prompt)
    result: dict[str, Any] = {
        "prompt": prompt,
        "original_prompt": original,
        "destination_model": args.destination_model,
        "target_output": args.target_output,
        "prompt_mode": args.prompt_mode,
    }
    if args.destination_tool:
        result["destination_tool"] = args.destination_tool
    if args.prompt_mode == "validate":
        issues = _reference_issues(original, args.assets or [])
        result.update(valid=not issues, issues=issues)
    if args.prompt_mode == "payload":
        payload: dict[str, Any] = {
            "prompt": prompt,
            _model_argument(args.destination_model): args.destination_model,
        }
        if args.duration_seconds and args.target_output == "video_prompt":
            payload["duration"] = args.duration_seconds
        if args.aspect_ratio:
            payload["aspectRatio"] = args.aspect_ratio
        result["payload"] = payload
    return ToolOutput(assets=[], extra=result)


# --- compose_script ----------------------------------------------------------------------------


class ComposeScriptArgs(ToolArgs):
    brief: str = Field(min_length=1, max_length=MAX_TEXT, description="What the piece is about.")
    script_type: (
        Literal[
            "video_prompt",
            "screenplay",
            "storyboard",
            "ad_script",
            "trailer",
            "social_short",
            "talking_head",
            "campaign",
            "revision",
        ]
        | None
    ) = Field(None, description="The kind of script to write.")
    destination_model: str | None = Field(None, description="Model the script is meant for.")
    destination_tool: str | None = Field(None, description="Tool the script is meant for.")
    duration_seconds: float | None = Field(None, ge=1, le=300, description="Total running time.")
    scene_count: int | None = Field(
        None, ge=1, le=12, description="Split it into this many scenes."
    )
    aspect_ratio: str | None = Field(None, max_length=16, description="Framing, e.g. 9:16.")
    platform: str | None = Field(None, max_length=100, description="Where it will be shown.")
    style: str | None = Field(None, max_length=1000, description="Tone and look.")
    first_frame_description: str | None = Field(
        None, max_length=2000, description="What the opening frame shows."
    )
    first_frame_data_url: str | None = Field(None, description="Opening frame image (not read).")
    last_frame_data_url: str | None = Field(None, description="Closing frame image (not read).")
    return_format: Literal["script", "markdown", "json"] = Field(
        "script", description="Plain text, Markdown, or a JSON string."
    )


def _script_text(title: str, body: str | None, scenes: list[dict[str, Any]], fmt: str) -> str:
    """The script in the requested format, built from the title and either a body or scenes."""
    if fmt == "json":
        return json.dumps(
            {"title": title, "scenes": scenes} if scenes else {"title": title, "script": body},
            ensure_ascii=False,
        )
    heading = f"# {title}" if fmt == "markdown" else title
    if not scenes:
        return f"{heading}\n\n{body}"
    blocks = []
    for scene in scenes:
        span = f"{_clock(scene['start_seconds'])}-{_clock(scene['end_seconds'])}"
        if fmt == "markdown":
            blocks.append(
                f"## Scene {scene['scene']} ({span})\n**Visual:** {scene['visual']}\n"
                f"**Narration:** {scene['narration']}"
            )
        else:
            blocks.append(
                f"Scene {scene['scene']} ({span})\nVisual: {scene['visual']}\n"
                f"Narration: {scene['narration']}"
            )
    return heading + "\n\n" + "\n\n".join(blocks)


async def compose_script(args: ComposeScriptArgs, ctx: ToolContext) -> ToolOutput:
    if args.destination_model is not None:
        _check_model(ALL_MEDIA_MODELS, args.destination_model, "destination", "destination_model")
    kind = (args.script_type or "video script").replace("_", " ")
    context = _lines(
        f"Brief: {args.brief}",
        f"Style: {args.style}" if args.style else None,
        f"Platform: {args.platform}" if args.platform else None,
        f"Aspect ratio: {args.aspect_ratio}" if args.aspect_ratio else None,
        f"Length: {args.duration_seconds:g} seconds" if args.duration_seconds else None,
        f"Opening frame: {args.first_frame_description}" if args.first_frame_description else None,
        f"Target model: {args.destination_model}" if args.destination_model else None,
    )
    warnings = []
    if args.first_frame_data_url or args.last_frame_data_url:
        warnings.append("frame images are not looked at; describe them in first_frame_description")
    fallback_title = " ".join(args.brief.split())[:80]
    scenes: list[dict[str, Any]] = []
    body = None
    if args.scene_count:
        count = args.scene_count
        schema = _object(
            {
                "title": _string(80),
                "scenes": {
                    "type": "array",
                    "minItems": count,
                    "maxItems": count,
                    "items": _object(
                        {
                            "visual": _string(_share(1200, count, 240)),
                            "narration": _string(_share(600, count, 160)),
                        }
                    ),
                },
            }
        )
        instruction = (
            f"Write a {kind} in {count} scenes. For each scene give what we see (visual) and "
            f"what is said (narration).\n{context}"
        )
        answer = await _generate(ctx, instruction, schema)
        total = args.duration_seconds or DEFAULT_SECONDS_PER_SCENE * count
        each = total / count
        for i, scene in enumerate(answer["scenes"]):
            scenes.append(
                {
                    "scene": i + 1,
                    "start_seconds": round(i * each, 2),
                    "end_seconds": round((i + 1) * each, 2),
                    "duration_seconds": round(each, 2),
                    "visual": _clean(scene["visual"], args.brief),
                    "narration": _clean(scene["narration"], ""),
                }
            )
    else:
        schema = _object({"title": _string(80), "script": _string(1200)})
        answer = await _generate(ctx, f"Write a {kind}.\n{context}", schema)
        body = _clean(answer["script"], args.brief, one_line=False)
    title = _clean(answer["title"], fallback_title)
    result: dict[str, Any] = {
        "script": _script_text(title, body, scenes, args.return_format),
        "title": title,
        "script_type": args.script_type,
        "return_format": args.return_format,
    }
    if scenes:
        result["scenes"] = scenes
    return ToolOutput(assets=[], warnings=warnings, extra=result)


# --- music: compose_lyrics and compose_instrumental ------------------------------------------


def _music_schema() -> dict[str, Any]:
    return {
        "music_prompt": _string(160),
        "bpm": {"type": "integer", "minimum": 60, "maximum": 180},
        "keyscale": {"enum": list(KEYSCALES)},
        "timesig": {"enum": [3, 4]},
    }


def _suggested(
    answer: dict[str, Any], duration: float, music_prompt: str | None, fallback: str
) -> dict[str, Any]:
    """generate_music arguments: the caller's music prompt wins over the model's."""
    return {
        "duration": duration,
        "bpm": answer["bpm"],
        "keyscale": answer["keyscale"],
        "timesig": answer["timesig"],
        "music_prompt": music_prompt or _clean(answer["music_prompt"], fallback),
    }


class ComposeLyricsArgs(ToolArgs):
    prompt: str = Field(min_length=1, max_length=MAX_TEXT, description="What the song is about.")
    language: str | None = Field(None, max_length=50, description="Language of the lyrics.")
    music_prompt: str | None = Field(
        None, max_length=1000, description="Genre, mood and instruments, if already decided."
    )
    duration_seconds: float | None = Field(None, ge=10, le=600, description="Song length.")


def _song_form(duration: float) -> tuple[list[str], list[str]]:
    """(sections the model writes, the order they are sung in) for a song of `duration`."""
    if duration < 90:
        return ["verse_1", "chorus"], ["verse_1", "chorus"]
    if duration < 180:
        return ["verse_1", "chorus", "verse_2"], ["verse_1", "chorus", "verse_2", "chorus"]
    return (
        ["verse_1", "chorus", "verse_2", "bridge"],
        ["verse_1", "chorus", "verse_2", "chorus", "bridge", "chorus"],
    )


async def compose_lyrics(args: ComposeLyricsArgs, ctx: ToolContext) -> ToolOutput:
    duration = args.duration_seconds or 60.0
    written, sung = _song_form(duration)
    properties: dict[str, Any] = {"title": _string(80)}
    properties.update({name: _string(240) for name in written})
    properties.update(_music_schema())
    language = f" in {args.language}" if args.language else ""
    instruction = _lines(
        f"Write song lyrics{language} about: {args.prompt}",
        f"Give {', '.join(n.replace('_', ' ') for n in written)} as a few short lines each, "
        "then a music description, tempo (bpm), key and beats per bar.",
        f"Music: {args.music_prompt}" if args.music_prompt else None,
    )
    answer = await _generate(ctx, instruction, _object(properties))
    texts = {name: _clean(answer[name], args.prompt, one_line=False) for name in written}
    labels = {"verse_1": "Verse 1", "verse_2": "Verse 2", "chorus": "Chorus", "bridge": "Bridge"}
    if "verse_2" not in written:
        labels["verse_1"] = "Verse"
    lyrics = "\n\n".join(f"[{labels[name]}]\n{texts[name]}" for name in sung)
    result: dict[str, Any] = {
        "lyrics": lyrics,
        "title": _clean(answer["title"], " ".join(args.prompt.split())[:80]),
        "sections": [labels[name] for name in sung],
        "suggested_params": _suggested(answer, duration, args.music_prompt, args.prompt),
    }
    if args.language:
        result["language"] = args.language
    return ToolOutput(assets=[], extra=result)


class ComposeInstrumentalArgs(ToolArgs):
    prompt: str = Field(min_length=1, max_length=MAX_TEXT, description="The mood or scene.")
    music_prompt: str | None = Field(
        None, max_length=1000, description="Genre, mood and instruments, if already decided."
    )
    duration_seconds: float | None = Field(None, ge=10, le=600, description="Piece length.")


def _instrumental_form(duration: float) -> list[tuple[str, float]]:
    """Section names with their share of the running time."""
    if duration < 45:
        return [("Intro", 1), ("Main theme", 3), ("Outro", 1)]
    if duration < 120:
        return [("Intro", 1), ("Theme A", 2), ("Theme B", 2), ("Outro", 1)]
    return [
        ("Intro", 1),
        ("Theme A", 2),
        ("Theme B", 2),
        ("Bridge", 1.5),
        ("Theme A reprise", 2),
        ("Outro", 1),
    ]


def _section_times(duration: float, shares: list[float], bar_seconds: float) -> list[float]:
    """Section boundaries in seconds, on bar lines where the piece is long enough for that."""
    total = sum(shares)
    bounds, elapsed = [0.0], 0.0
    for share in shares[:-1]:
        elapsed += duration * share / total
        on_bar = round(elapsed / bar_seconds) * bar_seconds
        bounds.append(on_bar if bounds[-1] < on_bar < duration else elapsed)
    bounds.append(duration)
    return [round(b, 2) for b in bounds]


async def compose_instrumental(args: ComposeInstrumentalArgs, ctx: ToolContext) -> ToolOutput:
    duration = args.duration_seconds or 60.0
    form = _instrumental_form(duration)
    properties: dict[str, Any] = {
        "title": _string(80),
        "sections": {
            "type": "array",
            "minItems": len(form),
            "maxItems": len(form),
            "items": _string(140),
        },
    }
    properties.update(_music_schema())
    instruction = _lines(
        f"Plan an instrumental piece about: {args.prompt}",
        f"Describe in one line each what happens in these {len(form)} sections: "
        + ", ".join(name for name, _ in form)
        + ". Then give a music description, tempo (bpm), key and beats per bar.",
        f"Music: {args.music_prompt}" if args.music_prompt else None,
    )
    answer = await _generate(ctx, instruction, _object(properties))
    bar_seconds = answer["timesig"] * 60 / answer["bpm"]
    bounds = _section_times(duration, [share for _, share in form], bar_seconds)
    sections = [
        {
            "name": name,
            "start_seconds": bounds[i],
            "end_seconds": bounds[i + 1],
            "description": _clean(answer["sections"][i], name),
        }
        for i, (name, _) in enumerate(form)
    ]
    structure = "\n".join(
        f"{_clock(s['start_seconds'])}-{_clock(s['end_seconds'])} {s['name']}: {s['description']}"
        for s in sections
    )
    result = {
        "structure": structure,
        "title": _clean(answer["title"], " ".join(args.prompt.split())[:80]),
        "sections": sections,
        "suggested_params": _suggested(answer, duration, args.music_prompt, args.prompt),
    }
    return ToolOutput(assets=[], extra=result)


# --- compose_workflow ----------------------------------------------------------------------


class DestinationModels(ToolArgs):
    image: str | None = Field(None, description="Image model for the scene pictures.")
    video: str | None = Field(None, description="Video model that animates them (not Seedance).")
    music: str | None = Field(None, description="Music model for the soundtrack.")


class ComposeWorkflowArgs(ToolArgs):
    brief: str = Field(min_length=1, max_length=MAX_TEXT, description="What the video is about.")
    scene_count: int = Field(3, ge=1, le=12, description="How many scenes (one picture each).")
    duration_seconds: float | None = Field(
        None, ge=1, le=120, description="Total length; default 5 s per scene."
    )
    aspect_ratio: AspectRatio = Field("16:9", description="Frame shape of pictures and video.")
    style: str | None = Field(None, max_length=1000, description="Look applied to every scene.")
    destination_models: DestinationModels | None = Field(
        None, description="Model ids per media type; the defaults otherwise."
    )
    max_estimated_capacity_units: float | None = Field(
        None, ge=1, description="Budget: scenes are dropped to fit; fits_budget says if it did."
    )
    include_audio: bool = Field(False, description="Add a generated music track.")
    return_format: Literal["json"] = Field("json", description="Only JSON is offered.")


def _checked_models(models: DestinationModels | None) -> DestinationModels:
    models = models or DestinationModels()
    if models.image is not None:
        _check_model(IMAGE_MODELS, models.image, "image", "destination_models.image")
    if models.video is not None:
        _check_model(VIDEO_MODELS, models.video, "video", "destination_models.video")
        if models.video.startswith("seedance"):
            raise ToolError(
                "PARAMETER_INVALID",
                "destination_models.video: the composed workflow animates photos, which "
                "Seedance models do not do here; use e.g. ltx25, wan22 or minimax-h3-i2v",
            )
    if models.music is not None:
        _check_model(MUSIC_MODELS, models.music, "music", "destination_models.music")
    return models


def _max_scenes(include_audio: bool) -> int:
    """Scenes that fit the step limit: one picture step each, plus animate, stitch and music."""
    return MAX_WORKFLOW_STEPS - 2 - int(include_audio)


def _binding(source: str, target: str, kind: str, index: int = 0) -> dict[str, Any]:
    return {
        "sourceStepId": source,
        "targetArgument": target,
        "transform": f"{kind}_index",
        "mediaType": kind,
        "sourceArtifactIndex": index,
        "required": True,
    }


def _workflow_steps(
    args: ComposeWorkflowArgs,
    models: DestinationModels,
    pictures: list[str],
    motions: list[str],
    music: str,
    clip_seconds: float,
) -> list[dict[str, Any]]:
    """The step graph: a picture per scene, one animate_photo step that turns each picture into
    a clip, an optional music track, and stitch_video joining the clips (under the music)."""
    count = len(pictures)
    width, height = _IMAGE_SIZES[args.aspect_ratio]
    steps: list[dict[str, Any]] = []
    for i, picture in enumerate(pictures, 1):
        arguments: dict[str, Any] = {"prompt": picture, "width": width, "height": height}
        if models.image:
            arguments["model"] = models.image
        steps.append({"id": f"scene_{i}", "toolName": "generate_image", "arguments": arguments})
    animate: dict[str, Any] = {
        "prompt": motions[0],
        "prompts": motions,
        "duration": clip_seconds,
        "aspectRatio": args.aspect_ratio,
        "targetResolution": VIDEO_SHORT_SIDE,
        "stitch": False,
    }
    if models.video:
        animate["videoModel"] = models.video
    steps.append(
        {
            "id": "clips",
            "toolName": "animate_photo",
            "arguments": animate,
            "dependsOn": [
                _binding(f"scene_{i}", "sourceImageIndices", "image") for i in range(1, count + 1)
            ],
        }
    )
    if args.include_audio:
        total = clip_seconds * count
        song: dict[str, Any] = {
            "prompt": music,
            "duration": round(min(max(total, MUSIC_SECONDS[0]), MUSIC_SECONDS[1]), 2),
        }
        if models.music:
            song["model"] = models.music
        steps.append({"id": "music", "toolName": "generate_music", "arguments": song})
    if count >= 2:
        bindings = [_binding("clips", "videoIndices", "video", i) for i in range(count)]
        if args.include_audio:
            bindings.append(_binding("music", "audioIndex", "audio"))
        steps.append(
            {
                "id": "final",
                "toolName": "stitch_video",
                "arguments": {"transition": {"type": "dissolve", "durationSeconds": 0.5}},
                "dependsOn": bindings,
            }
        )
    return steps


def _priced(steps: list[dict[str, Any]], title: str) -> tuple[list[dict[str, Any]], float]:
    """The steps with `estimatedCapacityUnits` each, and their total, via the workflow planner
    (so the estimate is the one a start of this plan would get)."""
    try:
        costs = step_costs(normalise_plan({"title": title, "steps": steps}))
    except ServiceError as exc:  # the plan is built here, so this is our bug: say what failed
        raise ToolError("WORKFLOW_VALIDATION_FAILED", exc.message) from exc
    priced = [{**step, "estimatedCapacityUnits": costs[step["id"]]} for step in steps]
    return priced, round(sum(costs.values()), 2)


async def _compose(
    args: ComposeWorkflowArgs, ctx: ToolContext
) -> tuple[str, list[dict[str, Any]], float, bool, list[str]]:
    """(title, priced steps, estimate, fits_budget, warnings) for a compose_workflow request."""
    models = _checked_models(args.destination_models)
    warnings: list[str] = []
    requested = args.scene_count
    total = args.duration_seconds or DEFAULT_SECONDS_PER_SCENE * requested
    wanted = round(total / requested, 2)
    clip_seconds = min(max(wanted, CLIP_SECONDS[0]), CLIP_SECONDS[1])
    if clip_seconds != wanted:
        warnings.append(f"clips last {clip_seconds:g} s each (animate_photo takes 2-30 s)")
    count = min(requested, _max_scenes(args.include_audio))
    if count < requested:
        warnings.append(
            f"{requested} scenes need more than {MAX_WORKFLOW_STEPS} workflow steps; "
            f"planned {count}"
        )
    budget = args.max_estimated_capacity_units

    def estimate(scenes: int) -> float:
        stand_in = ["x"] * scenes
        steps = _workflow_steps(args, models, stand_in, stand_in, "x", clip_seconds)
        return _priced(steps, "x")[1]

    if budget is not None:
        fitting = count
        while fitting > 1 and estimate(fitting) > budget:
            fitting -= 1
        if fitting < count:
            warnings.append(f"planned {fitting} of {requested} scenes to stay within the budget")
        count = fitting
    if args.include_audio and count == 1:
        warnings.append("a single clip cannot be joined with music; the track is a separate result")

    schema = _object(
        {
            "title": _string(80),
            "scenes": {
                "type": "array",
                "minItems": count,
                "maxItems": count,
                "items": _object(
                    {
                        "picture": _string(_share(1000, count, 240)),
                        "motion": _string(_share(500, count, 120)),
                    }
                ),
            },
            **({"music": _string(160)} if args.include_audio else {}),
        }
    )
    instruction = _lines(
        f"Brief: {args.brief}",
        f"Style: {args.style}" if args.style else None,
        f"Plan a short video of this brief in {count} scenes. For each scene, describe what "
        "the still picture shows and how the camera and subject move."
        + (" Also describe the background music." if args.include_audio else ""),
    )
    answer = await _generate(ctx, instruction, schema)
    brief = " ".join(args.brief.split())
    pictures = [_with_style(_clean(s["picture"], brief), args.style) for s in answer["scenes"]]
    motions = [_clean(s["motion"], "slow camera push-in") for s in answer["scenes"]]
    music = _clean(answer.get("music", ""), f"soundtrack for: {brief[:200]}")
    title = _clean(answer["title"], brief[:80])
    steps = _workflow_steps(args, models, pictures, motions, music, clip_seconds)
    priced, units = _priced(steps, title)
    fits = budget is None or units <= budget
    if not fits:
        warnings.append(f"the smallest plan needs {units:g} units, over the budget of {budget:g}")
    return title, priced, units, fits, warnings


async def compose_workflow(args: ComposeWorkflowArgs, ctx: ToolContext) -> ToolOutput:
    title, steps, units, fits, warnings = await _compose(args, ctx)
    result = {
        "title": title,
        "steps": steps,
        "estimated_capacity_units": units,
        "fits_budget": fits,
        "scene_count": sum(step["toolName"] == "generate_image" for step in steps),
    }
    return ToolOutput(assets=[], warnings=warnings, extra=result)


# --- compose_workflow_template ---------------------------------------------------------------


class InputOption(ToolArgs):
    value: str | int | float | bool = Field(description="The value passed when chosen.")
    label: str | None = Field(None, description="What a person sees.")


class InputCount(ToolArgs):
    min: int = Field(0, ge=0, description="Fewest values.")
    max: int | None = Field(None, ge=1, description="Most values.")


class TemplateInputSpec(ToolArgs):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    type: Literal["image", "audio", "video", "text", "number", "select", "boolean"]
    required: bool = False
    description: str = ""
    default: Any = None
    options: list[InputOption] | None = None
    multiple: InputCount | None = None
    internal: bool = False


class ComposeWorkflowTemplateArgs(ComposeWorkflowArgs):
    name: str = Field(min_length=1, max_length=200, description="Template name.")
    description: str | None = Field(None, max_length=2000, description="What it makes.")
    category: (
        Literal[
            "portrait",
            "video-social",
            "makeover",
            "cinematic",
            "music",
            "analysis",
            "custom",
            "other",
        ]
        | None
    ) = Field(None, description="Catalog category; default custom.")
    visibility: Literal["private", "public"] | None = Field(None, description="Default private.")
    inputs: list[TemplateInputSpec] | None = Field(
        None,
        max_length=16,
        description="Template inputs; text and select inputs are woven into every prompt.",
    )
    existing_template: dict[str, Any] | None = Field(
        None, description="A template to revise: its fields are kept unless given here."
    )


_SERVER_FIELDS = ("id", "version", "author", "createdAt", "updatedAt")
_WOVEN_ARGUMENTS = {"generate_image": "prompt", "generate_music": "prompt"}


def _woven(step: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """A template stage for `step`, with `${inputs.<name>}` placeholders appended to its
    prompt(s), so each run of the template carries the caller's words."""
    args = dict(step["arguments"])
    suffix = "".join(f". ${{inputs.{name}}}" for name in names)
    if suffix and step["toolName"] in _WOVEN_ARGUMENTS:
        key = _WOVEN_ARGUMENTS[step["toolName"]]
        args[key] = f"{args[key]}{suffix}"
    if suffix and step["toolName"] == "animate_photo":
        args["prompts"] = [f"{prompt}{suffix}" for prompt in args["prompts"]]
        args["prompt"] = f"{args['prompt']}{suffix}"
    stage: dict[str, Any] = {"type": "fixed", "id": step["id"], "tool": step["toolName"]}
    stage["args"] = args
    if step.get("dependsOn"):
        stage["dependsOn"] = step["dependsOn"]
    return stage


def _template_base(existing: dict[str, Any] | None) -> dict[str, Any]:
    if existing is None:
        return {}
    try:
        template = parse_template(existing)
    except ServiceError as exc:
        raise ToolError("PARAMETER_INVALID", f"existing_template: {exc.message}") from exc
    base = {k: v for k, v in template.dump().items() if k not in _SERVER_FIELDS}
    if template.id:
        base["metadata"] = {**base.get("metadata", {}), "revisionOf": template.id}
    return base


async def compose_workflow_template(
    args: ComposeWorkflowTemplateArgs, ctx: ToolContext
) -> ToolOutput:
    base = _template_base(args.existing_template)
    title, steps, units, fits, warnings = await _compose(args, ctx)
    inputs = (
        [spec.model_dump(exclude_none=True) for spec in args.inputs]
        if args.inputs is not None
        else base.get("inputs", [])
    )
    woven = [spec["name"] for spec in inputs if spec["type"] in ("text", "select")]
    unused = [spec["name"] for spec in inputs if spec["type"] not in ("text", "select")]
    if unused:
        warnings.append(
            f"inputs {', '.join(unused)} are declared but no stage uses them yet; bind them in "
            "the stages' args"
        )
    stages = [_woven(step, woven) for step in steps]
    draft = {
        **base,
        "name": args.name,
        "description": args.description or base.get("description") or title,
        "brief": args.brief,
        "category": args.category or base.get("category", "custom"),
        "visibility": args.visibility or base.get("visibility", "private"),
        "inputs": inputs,
        "stages": stages,
        "estimatedCapacityUnits": {"min": units, "max": units},
    }
    try:
        template = parse_template(draft)
    except ServiceError as exc:
        raise ToolError("PARAMETER_INVALID", exc.message) from exc
    result = {
        "template_draft": {k: v for k, v in template.dump().items() if k not in _SERVER_FIELDS},
        "plan": {
            "title": title,
            "steps": steps,
            "estimated_capacity_units": units,
            "fits_budget": fits,
        },
    }
    return ToolOutput(assets=[], warnings=warnings, extra=result)


TOOLS = tool_family(
    "composition",
    "analysis",
    [
        Tool(
            "enhance_prompt",
            "Rewrite a rough idea into a prompt suited to one exact destination model (image, "
            "video, edit or any model id), or shorten, keep or check it. Returns the prompt.",
            EnhancePromptArgs,
            enhance_prompt,
            CREATIVE,
            cost=lambda args: COST,
        ),
        Tool(
            "compose_script",
            "Write a script, storyboard or ad copy from a brief; with scene_count it is split into "
            "timed scenes (visual + narration). Returns the script text and the scenes.",
            ComposeScriptArgs,
            compose_script,
            CREATIVE,
            cost=lambda args: COST,
        ),
        Tool(
            "compose_lyrics",
            "Write song lyrics in verse/chorus sections for a theme, with suggested music "
            "parameters (duration, bpm, key, beats per bar, music prompt) for generate_music.",
            ComposeLyricsArgs,
            compose_lyrics,
            CREATIVE,
            cost=lambda args: COST,
        ),
        Tool(
            "compose_instrumental",
            "Plan an instrumental piece: timed sections with what happens in each, plus suggested "
            "music parameters (duration, bpm, key, beats per bar, music prompt) for "
            "generate_music.",
            ComposeInstrumentalArgs,
            compose_instrumental,
            CREATIVE,
            cost=lambda args: COST,
        ),
        Tool(
            "compose_workflow",
            "Turn a brief into a ready-to-run workflow: one picture per scene, animated into "
            "clips, joined (optionally with music), with a capacity estimate that respects a "
            "budget.",
            ComposeWorkflowArgs,
            compose_workflow,
            AGENT_ONLY,
            cost=lambda args: COST,
        ),
        Tool(
            "compose_workflow_template",
            "Like compose_workflow, but returns a reusable template draft (to save as a workflow "
            "template) plus the concrete plan; can revise an existing template.",
            ComposeWorkflowTemplateArgs,
            compose_workflow_template,
            AGENT_ONLY,
            cost=lambda args: COST,
        ),
    ],
)
