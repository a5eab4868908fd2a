"""compose_workflow and compose_workflow_template: a brief becomes a ready-to-run plan (one
picture per scene, animated into clips, joined, optionally with music) whose step graph and
cost are built in code, or a reusable template of that plan with its inputs woven in.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from sogni_intelligence.errors import ServiceError
from sogni_intelligence.media.models import (
    IMAGE_MODELS,
    MUSIC_MODELS,
    VIDEO_MODELS,
)
from sogni_intelligence.tools.base import (
    ToolArgs,
    ToolContext,
    ToolError,
    ToolOutput,
)
from sogni_intelligence.tools.composing import (
    CLIP_SECONDS,
    DEFAULT_SECONDS_PER_SCENE,
    IMAGE_SIZES,
    MAX_TEXT,
    MUSIC_SECONDS,
    VIDEO_SHORT_SIDE,
    AspectRatio,
    ask_text_model,
    check_model,
    clean_text,
    even_share,
    joined_lines,
    model_id_schema,
    string_schema,
    titled_scenes_schema,
    with_style,
)
from sogni_intelligence.tools.plan_model import MAX_STEPS
from sogni_intelligence.tools.plans import normalise_plan, step_costs
from sogni_intelligence.tools.template_model import parse_template

#: The video models that animate a photo here (Seedance does not).
PHOTO_ANIMATORS = {k: v for k, v in VIDEO_MODELS.items() if not k.startswith("seedance")}


class DestinationModels(ToolArgs):
    image: Annotated[str, model_id_schema(IMAGE_MODELS)] | None = Field(
        None, description="Image model for the scene pictures."
    )
    video: Annotated[str, model_id_schema(PHOTO_ANIMATORS)] | None = Field(
        None, description="Video model that animates them (not Seedance)."
    )
    music: Annotated[str, model_id_schema(MUSIC_MODELS)] | None = Field(
        None, description="Music model for the soundtrack."
    )


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
        check_model(IMAGE_MODELS, models.image, "image", "destination_models.image")
    if models.video is not None:
        check_model(VIDEO_MODELS, models.video, "video", "destination_models.video")
        if models.video not in PHOTO_ANIMATORS:
            raise ToolError(
                "PARAMETER_INVALID",
                "destination_models.video: the composed workflow animates photos, which "
                "Seedance models do not do here; use e.g. ltx25, wan22 or minimax-h3-i2v",
            )
    if models.music is not None:
        check_model(MUSIC_MODELS, models.music, "music", "destination_models.music")
    return models


def _max_scenes(include_audio: bool) -> int:
    """Scenes that fit the step limit: one picture step each, plus animate, stitch and music."""
    return MAX_STEPS - 2 - int(include_audio)


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
    width, height = IMAGE_SIZES[args.aspect_ratio]
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
            f"{requested} scenes need more than {MAX_STEPS} workflow steps; planned {count}"
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

    schema = titled_scenes_schema(
        count,
        {
            "picture": string_schema(even_share(1000, count, 240)),
            "motion": string_schema(even_share(500, count, 120)),
        },
        {"music": string_schema(160)} if args.include_audio else {},
    )
    instruction = joined_lines(
        f"Brief: {args.brief}",
        f"Style: {args.style}" if args.style else None,
        f"Plan a short video of this brief in {count} scenes. For each scene, describe what "
        "the still picture shows and how the camera and subject move."
        + (" Also describe the background music." if args.include_audio else ""),
    )
    answer = await ask_text_model(ctx, instruction, schema)
    brief = " ".join(args.brief.split())
    pictures = [with_style(clean_text(s["picture"], brief), args.style) for s in answer["scenes"]]
    motions = [clean_text(s["motion"], "slow camera push-in") for s in answer["scenes"]]
    music = clean_text(answer.get("music", ""), f"soundtrack for: {brief[:200]}")
    title = clean_text(answer["title"], brief[:80])
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
