"""enhance_prompt: a rough idea rewritten into a prompt for one exact destination model, with
the reference tokens that model reads checked against the assets the call passes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from sogni_intelligence.media.models import (
    IMAGE_MODELS,
    VIDEO_MODELS,
)
from sogni_intelligence.tools.base import (
    ToolArgs,
    ToolContext,
    ToolOutput,
)
from sogni_intelligence.tools.composing import (
    ALL_MEDIA_MODELS,
    MAX_TEXT,
    REFERENCE_TOKEN,
    ask_text_model,
    check_model,
    clean_text,
    joined_lines,
    model_id_schema,
    object_schema,
    runnable_models,
    string_schema,
    with_style,
)


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


_PROMPT_TABLES: dict[str, tuple[Mapping[str, str | None], str]] = {
    "image_prompt": (IMAGE_MODELS, "image"),
    "edit_prompt": (IMAGE_MODELS, "image"),
    "video_prompt": (VIDEO_MODELS, "video"),
    "model_prompt": (ALL_MEDIA_MODELS, "destination"),
}


def _models_per_target(schema: dict[str, Any]) -> None:
    """Say in the schema which models each target_output takes (what `enhance_prompt`
    checks), so that a call grammar cannot pair an image prompt with a video model."""
    targets: dict[tuple[str, ...], list[str]] = {}
    for target, (table, _) in _PROMPT_TABLES.items():
        targets.setdefault(tuple(runnable_models(table)), []).append(target)
    pairs = [
        {
            "properties": {
                "target_output": {"enum": names},
                "destination_model": {"enum": list(models)},
            },
            "additionalProperties": True,  # the object's own schema lists the rest
        }
        for models, names in targets.items()
    ]
    schema["allOf"] = [{"anyOf": pairs}]


class EnhancePromptArgs(ToolArgs):
    model_config = ConfigDict(json_schema_extra=_models_per_target)
    rarely_needed = frozenset({"prompting_type", "model_title"})  # deprecated and ignored

    prompt: str = Field(min_length=1, max_length=MAX_TEXT, description="The idea to improve.")
    target_output: Literal["image_prompt", "video_prompt", "edit_prompt", "model_prompt"] = Field(
        description="What the prompt is for: a new image, a video, an image edit, or any model."
    )
    destination_model: Annotated[str, model_id_schema(ALL_MEDIA_MODELS)] = Field(
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
    for kind, number in REFERENCE_TOKEN.findall(prompt):
        have = counts[kind.lower()]
        if int(number) < 1 or int(number) > have:
            issues.append(f"@{kind}{number} refers to a missing {kind.lower()} (there are {have})")
    return list(dict.fromkeys(issues))


async def enhance_prompt(args: EnhancePromptArgs, ctx: ToolContext) -> ToolOutput:
    table, kind = _PROMPT_TABLES[args.target_output]
    check_model(table, args.destination_model, kind, "destination_model")
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
        instruction = joined_lines(
            f"Idea: {original}",
            f"Write this idea as {_PROMPT_PURPOSE[args.target_output]} "
            + ", ".join(d for d in details if d)
            + ".",
            "Keep it short and plain." if compress else "Add concrete visual detail.",
            f"Reference media: {'; '.join(assets)}." if assets else None,
            f"Rules: {json.dumps(args.constraints)}" if args.constraints else None,
        )
        answer = await ask_text_model(
            ctx, instruction, object_schema({"prompt": string_schema(limit)})
        )
        prompt = clean_text(answer["prompt"], original)
        if args.target_output != "model_prompt" and not compress:
            prompt = with_style(prompt, args.style_prompt)
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
