"""Inline workflow plans: validation and normalisation, and cost. The plan model is in
`plan_model`, execution order and run-time bindings in `plan_bindings`.

Everything here is pure (no I/O). A plan is the workflow `input` object, `{title?, steps}`, plus
the request's `media_references`. `normalise_plan` turns it into a `Plan` or raises a 400
`ServiceError`; the executor then runs `execution_order(plan)` wave by wave and calls
`resolve_arguments` right before each step to fill in what its `dependsOn` bindings name.

Decisions where the contract is silent:
- A binding may name any step of the plan (not only earlier ones); cycles are refused.
- `sourceArtifactIndex` counts the source's artifacts of the binding's media type (given by
  `mediaType`, else implied by a typed transform such as `image_index`), else all artifacts;
  for `$input_media` it counts the references of that type.
- `artifact_data_uri` hands over the artifact's signed URL: durable media is http(s) only.
- An `*_index` binding into an argument documented as a 0-based *upload* position
  (`sound_to_video.audioSourceIndex`/`sourceImageIndex`, `video_to_video.videoSourceIndex`,
  `extract_metadata.fileIndex`) gets that 0-based position, and must come from `$input_media`.
- Any binding whose target argument is an array appends a scalar value to it, in `dependsOn`
  order; list values (cues, overlays) replace the argument.
- Unknown keys of a step are ignored (so `compose_workflow` steps with `estimatedCapacityUnits`
  can be passed straight in); unknown keys of a binding are refused.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Collection, Mapping
from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError

from sogni_intelligence.errors import ServiceError, invalid_request
from sogni_intelligence.tools.base import Tool
from sogni_intelligence.tools.media_inputs import media_location
from sogni_intelligence.tools.plan_model import (
    DEFAULT_TITLE,
    INDEX_TRANSFORMS,
    INPUT_MEDIA,
    MAX_STEPS,
    STAND_IN_URL,
    TRANSFORM_KIND,
    UPLOAD_POSITION_ARGUMENTS,
    URL_TRANSFORMS,
    USER_INPUT_TOOL,
    Binding,
    MediaType,
    Plan,
    PlanStep,
    answers_named,
)
from sogni_intelligence.tools.steps import STEP_CANDIDATES

_CODE = "workflow_validation_failed"
_MEDIA_CODE = "invalid_media_reference"


# Pydantic error types that refuse a value of the right type (range, length, choice, format).
_VALUE_ERRORS = frozenset(
    {
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "multiple_of",
        "string_too_short",
        "string_too_long",
        "string_pattern_mismatch",
        "too_short",
        "too_long",
        "literal_error",
        "enum",
        "value_error",
    }
)

_STAND_IN_CUES = [{"start": 0.0, "end": 1.0, "text": "stand-in"}]
_STAND_IN_SRT = "1\n00:00:00,000 --> 00:00:01,000\nstand-in\n"
_STAND_IN_OVERLAYS = [{"kind": "text", "text": "stand-in"}]

_EXTENSION_KIND: dict[str, MediaType] = {
    **dict.fromkeys(("png", "jpg", "jpeg", "webp", "gif", "bmp", "avif", "heic"), "image"),
    **dict.fromkeys(("mp4", "mov", "webm", "mkv", "m4v", "avi"), "video"),
    **dict.fromkeys(("mp3", "wav", "flac", "ogg", "m4a", "aac", "opus"), "audio"),
}


# --- the step tool set ---------------------------------------------------------------------------


def step_tool_names() -> frozenset[str]:
    """Tools a durable step may call: every media, analysis, control and asset tool; never a
    composition tool (they compose plans, so plans cannot depend on them)."""
    return frozenset(STEP_CANDIDATES)


@cache
def _array_arguments(tool_name: str) -> frozenset[str]:
    properties = STEP_CANDIDATES[tool_name].parameters().get("properties", {})

    def is_array(schema: dict[str, Any]) -> bool:
        if schema.get("type") == "array":
            return True
        return any(is_array(option) for option in schema.get("anyOf", []))

    return frozenset(name for name, schema in properties.items() if is_array(schema))


def is_array_argument(tool_name: str, argument: str) -> bool:
    return argument in _array_arguments(tool_name)


# --- media references ----------------------------------------------------------------------------


def media_kind(reference: dict[str, Any]) -> MediaType | None:
    """A reference's media type: its `kind`, else guessed from the URL's file extension."""
    kind = reference.get("kind")
    if kind in ("image", "video", "audio"):
        return kind
    location = media_location(reference) or ""
    path = location.split("?", 1)[0].split("#", 1)[0]
    extension = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return _EXTENSION_KIND.get(extension)


def validate_media_references(references: Any) -> list[dict[str, Any]]:
    """Durable endpoints take http(s) media only: no data URIs in any spelling."""
    if references is None:
        return []
    if not isinstance(references, list):
        raise invalid_request("media_references must be an array", "media_references", _MEDIA_CODE)
    for i, reference in enumerate(references):
        param = f"media_references[{i}]"
        if not isinstance(reference, dict):
            raise invalid_request(f"{param} must be an object", param, _MEDIA_CODE)
        for key in ("dataUri", "data_uri"):
            if key in reference:
                raise invalid_request(
                    f"{param}.{key}: durable workflows and runs take http(s) media URLs only; "
                    "data URIs are accepted on /v1/chat/completions only (upload the file and "
                    "pass its URL)",
                    f"{param}.{key}",
                    _MEDIA_CODE,
                )
        for key in ("url", "value", "data"):
            value = reference.get(key)
            if isinstance(value, str) and value.strip().lower().startswith("data:"):
                raise invalid_request(
                    f"{param}.{key} is a data URI; durable workflows and runs take http(s) media "
                    "URLs only (upload the file and pass its URL)",
                    f"{param}.{key}",
                    _MEDIA_CODE,
                )
        kind = reference.get("kind")
        if kind is not None and kind not in ("image", "video", "audio"):
            raise invalid_request(
                f"{param}.kind must be image, video or audio", f"{param}.kind", _MEDIA_CODE
            )
        location = media_location(reference)
        if location is None:
            raise invalid_request(f"{param} needs an http(s) url", f"{param}.url", _MEDIA_CODE)
        if not re.match(r"^https?://[^/\s]+", location, re.IGNORECASE):
            raise invalid_request(
                f"{param} must be an http(s) URL, got {location[:60]!r}",
                f"{param}.url",
                _MEDIA_CODE,
            )
    return [dict(reference) for reference in references]


# --- normalisation -------------------------------------------------------------------------------


def plan_error(message: str, param: str | None = None) -> ServiceError:
    return invalid_request(message, param, _CODE)


def normalise_step_id(raw: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", raw)


def _stand_in(binding: Binding, value: Any = None) -> Any:
    """A stand-in for what a binding will write, for validating arguments before the run."""
    transform = binding.transform
    if value is not None:
        return value
    if transform in INDEX_TRANSFORMS:
        return 0
    if transform in URL_TRANSFORMS:
        return STAND_IN_URL
    if transform == "asset_ref":
        return {"asset_id": "stand-in", "url": STAND_IN_URL}
    if transform == "subtitle_cues":
        return copy.deepcopy(_STAND_IN_CUES)
    if transform == "subtitle_srt":
        return _STAND_IN_SRT
    return copy.deepcopy(_STAND_IN_OVERLAYS)


def write_argument(arguments: dict[str, Any], tool_name: str, target: str, value: Any) -> None:
    """Put a bound value into the arguments; a scalar into an array argument is appended."""
    if is_array_argument(tool_name, target) and not isinstance(value, list):
        current = arguments.get(target)
        items = list(current) if isinstance(current, list) else []
        items.append(value)
        arguments[target] = items
    else:
        arguments[target] = value


def input_media_value(binding: Binding, tool_name: str, position: int) -> Any:
    """What an `$input_media` index binding writes for the `position`-th reference of its type."""
    if (tool_name, binding.targetArgument) in UPLOAD_POSITION_ARGUMENTS:
        return position
    return -position - 1


def _arguments_for_validation(
    step: PlanStep, input_values: dict[int, Any] | None = None
) -> dict[str, Any]:
    arguments = copy.deepcopy(step.arguments)
    for j, binding in enumerate(step.dependsOn):
        value = (input_values or {}).get(j)
        write_argument(arguments, step.toolName, binding.targetArgument, _stand_in(binding, value))
    return arguments


def _validate_arguments(
    step: PlanStep, index: int, arguments: dict[str, Any], open_arguments: Collection[str] = ()
) -> BaseModel | None:
    """The step's typed arguments, or a 400 naming the first bad one. For `open_arguments` only
    the type counts: their value is known at run time, so a stand-in outside a range, length or
    choice is forgiven (and then there are no typed arguments to return)."""
    tool = STEP_CANDIDATES[step.toolName]
    try:
        return tool.args.model_validate(arguments)
    except ValidationError as exc:
        errors = [
            error
            for error in exc.errors()
            if error["type"] not in _VALUE_ERRORS
            or not error["loc"]
            or error["loc"][0] not in open_arguments
        ]
        if not errors:
            return None
        first = errors[0]
        location = ".".join(str(part) for part in first["loc"])
        param = f"input.steps[{index}].arguments" + (f".{location}" if location else "")
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in errors
        )
        argument = str(first["loc"][0]) if first["loc"] else "arguments"
        raise plan_error(
            f"Workflow step '{step.id}' ({step.toolName}) has an invalid argument "
            f"'{argument}': {problems}",
            param,
        ) from exc


def _parse_bindings(raw: Any, index: int) -> list[Binding]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise plan_error(
            f"Workflow step {index + 1} dependsOn must be an array",
            f"input.steps[{index}].dependsOn",
        )
    bindings = []
    for j, item in enumerate(raw):
        param = f"input.steps[{index}].dependsOn[{j}]"
        if not isinstance(item, dict):
            raise plan_error(f"Workflow step {index + 1} dependsOn[{j}] must be an object", param)
        try:
            bindings.append(Binding.model_validate(item))
        except ValidationError as exc:
            error = exc.errors()[0]
            location = ".".join(str(part) for part in error["loc"])
            raise plan_error(
                f"Workflow step {index + 1} dependsOn[{j}]: {location or 'binding'}: "
                f"{error['msg']}",
                f"{param}.{location}" if location else param,
            ) from exc
    return bindings


_POLICY_FIELDS = ("onError", "maxAttempts", "after", "answerTimeoutSeconds")


def _step_policy(raw: dict[str, Any], index: int) -> dict[str, Any]:
    """A step's optional run policy (what a failure does, tries, waits), checked on its own so
    that a bad value is a 400 naming the field."""
    given = {name: raw[name] for name in _POLICY_FIELDS if raw.get(name) is not None}
    if not given:
        return {}
    try:
        checked = PlanStep.model_validate(
            {"id": "x", "sequence": 0, "toolName": raw.get("toolName"), **given}
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        location = ".".join(str(part) for part in error["loc"])
        raise plan_error(
            f"Workflow step {index + 1} {location}: {error['msg']}",
            f"input.steps[{index}].{location}",
        ) from exc
    if checked.answerTimeoutSeconds is not None and not checked.asks_user:
        raise plan_error(
            f"Workflow step {index + 1}: answerTimeoutSeconds is only for a step that asks the "
            f"user ({USER_INPUT_TOOL})",
            f"input.steps[{index}].answerTimeoutSeconds",
        )
    return {name: getattr(checked, name) for name in given}


def _find_cycle(steps: list[PlanStep]) -> list[str] | None:
    graph = {step.id: step.dependencies() for step in steps}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for step in steps:
        if step.id not in state and (cycle := visit(step.id)) is not None:
            return cycle
    return None


def normalise_plan(
    raw_input: Any,
    media_references: Any = None,
    *,
    max_steps: int = MAX_STEPS,
    open_arguments: Mapping[int, Collection[str]] | None = None,
) -> Plan:
    """Validate a workflow `input` (`{title?, steps}`) and the request's media references.

    Raises a 400 `ServiceError` naming the offending step, binding or argument. A template check
    passes its own `max_steps` (conditions may leave stages out) and, per step position, the
    `open_arguments` that hold stand-ins for caller inputs (only their type is checked)."""
    references = validate_media_references(media_references)
    if not isinstance(raw_input, dict):
        raise plan_error("Workflow input must be an object with a steps array", "input")
    title = raw_input.get("title")
    if title is not None and not isinstance(title, str):
        raise plan_error("Workflow title must be a string", "input.title")
    raw_steps = raw_input.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise plan_error("Durable workflow requires at least one step", "input.steps")
    if len(raw_steps) > max_steps:
        raise plan_error(f"Durable workflow supports at most {max_steps} steps", "input.steps")

    allowed = step_tool_names()
    steps: list[PlanStep] = []
    taken: set[str] = set()
    for i, raw in enumerate(raw_steps):
        param = f"input.steps[{i}]"
        if not isinstance(raw, dict):
            raise plan_error(f"Workflow step {i + 1} must be an object", param)
        tool_name = raw.get("toolName")
        if not isinstance(tool_name, str) or not tool_name:
            raise plan_error(f"Workflow step {i + 1} requires a toolName", f"{param}.toolName")
        if tool_name not in allowed:
            raise plan_error(f"Unsupported hosted tool: {tool_name}", f"{param}.toolName")
        arguments = raw.get("arguments", {})
        if not isinstance(arguments, dict):
            raise plan_error(
                f"Workflow step {i + 1} requires object arguments", f"{param}.arguments"
            )
        raw_id = raw.get("id")
        if raw_id is not None and not isinstance(raw_id, str):
            raise plan_error(f"Workflow step {i + 1} id must be a string", f"{param}.id")
        step_id = normalise_step_id(raw_id or tool_name)
        if step_id in taken:
            candidate = f"{step_id}_{i + 1}"
            while candidate in taken:
                candidate = f"{candidate}_{i + 1}"
            step_id = candidate
        taken.add(step_id)
        steps.append(
            PlanStep(
                id=step_id,
                sequence=i,
                toolName=tool_name,
                arguments=copy.deepcopy(arguments),
                dependsOn=_parse_bindings(raw.get("dependsOn"), i),
                **_step_policy(raw, i),
            )
        )

    # Bindings name steps by the id the client gave; normalise it the same way. A duplicated id
    # names the first step that carried it.
    ids = {step.id for step in steps}
    for i, step in enumerate(steps):
        for j, binding in enumerate(step.dependsOn):
            if not binding.from_input_media:
                binding.sourceStepId = normalise_step_id(binding.sourceStepId)
            _check_binding(step, i, j, binding, ids, references)
        _check_targets(step, i)
        if step.after is not None:
            step.after = [normalise_step_id(source) for source in step.after]
        asked = {s.id for s in steps if s.asks_user} & set(step.dependencies())
        for source in answers_named(step.arguments):
            if source not in asked:
                raise plan_error(
                    f"Workflow step '{step.id}' uses $answers.{source}, which is not a step it "
                    f"waits for ({USER_INPUT_TOOL}, named in after or dependsOn)",
                    f"input.steps[{i}].arguments",
                )
        for j, source in enumerate(step.after or []):
            if source not in ids or source == step.id:
                raise plan_error(
                    f"Workflow step '{step.id}' waits for '{source}', no other step of this plan",
                    f"input.steps[{i}].after[{j}]",
                )

    cycle = _find_cycle(steps)
    if cycle is not None:
        raise plan_error(
            "Workflow steps depend on each other in a cycle: " + " -> ".join(cycle),
            "input.steps",
        )

    for i, step in enumerate(steps):
        input_values = {
            j: value
            for j, binding in enumerate(step.dependsOn)
            if binding.from_input_media
            and (value := _input_media_stand_in(step, binding, references)) is not None
        }
        arguments = _arguments_for_validation(step, input_values)
        _validate_arguments(step, i, arguments, (open_arguments or {}).get(i, ()))

    return Plan(title=title or DEFAULT_TITLE, mediaReferences=references, steps=steps)


def _references_of(references: list[dict[str, Any]], kind: MediaType | None) -> list[dict]:
    return [r for r in references if kind is None or media_kind(r) == kind]


def _input_media_stand_in(
    step: PlanStep, binding: Binding, references: list[dict[str, Any]]
) -> Any:
    """The value an `$input_media` binding will write, where it is known before the run."""
    candidates = _references_of(references, binding.kind())
    position = binding.sourceArtifactIndex
    if binding.sourceArtifactId is not None:
        ids = [r.get("id") for r in candidates]
        if binding.sourceArtifactId not in ids:
            return None
        position = ids.index(binding.sourceArtifactId)
    if position >= len(candidates):
        return None
    if binding.transform in INDEX_TRANSFORMS:
        return input_media_value(binding, step.toolName, position)
    if binding.transform in URL_TRANSFORMS:
        return media_location(candidates[position])
    return None


def _check_binding(
    step: PlanStep,
    index: int,
    j: int,
    binding: Binding,
    ids: set[str],
    references: list[dict[str, Any]],
) -> None:
    param = f"input.steps[{index}].dependsOn[{j}]"
    implied = TRANSFORM_KIND.get(binding.transform)
    if binding.mediaType and implied and binding.mediaType != implied:
        raise plan_error(
            f"Workflow step '{step.id}': transform {binding.transform} needs mediaType "
            f"{implied}, not {binding.mediaType}",
            f"{param}.mediaType",
        )
    tool = STEP_CANDIDATES[step.toolName]
    if binding.targetArgument not in tool.args.model_fields:
        raise plan_error(
            f"Workflow step '{step.id}': {step.toolName} has no argument "
            f"'{binding.targetArgument}' to bind",
            f"{param}.targetArgument",
        )
    if binding.from_input_media:
        kind = binding.kind()
        candidates = _references_of(references, kind)
        what = f"{kind} media reference" if kind else "media reference"
        if binding.sourceArtifactId is not None:
            found = any(r.get("id") == binding.sourceArtifactId for r in candidates)
            if not found and binding.required:
                raise plan_error(
                    f"Workflow step '{step.id}' binds {INPUT_MEDIA} {what} "
                    f"'{binding.sourceArtifactId}', which the request does not have",
                    f"{param}.sourceArtifactId",
                )
        elif binding.sourceArtifactIndex >= len(candidates) and binding.required:
            raise plan_error(
                f"Workflow step '{step.id}' binds {INPUT_MEDIA} {what} "
                f"{binding.sourceArtifactIndex}, but the request has {len(candidates)}",
                f"{param}.sourceArtifactIndex",
            )
        return
    if binding.sourceStepId == step.id:
        raise plan_error(
            f"Workflow step '{step.id}' cannot depend on itself", f"{param}.sourceStepId"
        )
    if binding.sourceStepId not in ids:
        raise plan_error(
            f"Workflow step '{step.id}' depends on unknown step '{binding.sourceStepId}'",
            f"{param}.sourceStepId",
        )
    if (step.toolName, binding.targetArgument) in UPLOAD_POSITION_ARGUMENTS:
        raise plan_error(
            f"Workflow step '{step.id}': {step.toolName}.{binding.targetArgument} is a 0-based "
            f"upload position; bind it from {INPUT_MEDIA}",
            f"{param}.targetArgument",
        )


def _check_targets(step: PlanStep, index: int) -> None:
    """A scalar argument can be bound once; an array argument takes any number of scalars."""
    seen: set[str] = set()
    for j, binding in enumerate(step.dependsOn):
        target = binding.targetArgument
        appends = is_array_argument(step.toolName, target) and binding.transform not in (
            "subtitle_cues",
            "overlay_items",
        )
        if target in seen and not appends:
            raise plan_error(
                f"Workflow step '{step.id}' binds argument '{target}' more than once",
                f"input.steps[{index}].dependsOn[{j}].targetArgument",
            )
        seen.add(target)


# --- cost ----------------------------------------------------------------------------------------


def _tool(step: PlanStep) -> Tool:
    return STEP_CANDIDATES[step.toolName]


def step_costs(plan: Plan) -> dict[str, float]:
    """Estimated capacity units per step id (`estimatedCapacityUnits`), with stand-ins for bound
    arguments (an array binding counts as one more entry)."""
    costs: dict[str, float] = {}
    for i, step in enumerate(plan.steps):
        references = plan.mediaReferences
        input_values = {
            j: value
            for j, binding in enumerate(step.dependsOn)
            if binding.from_input_media
            and (value := _input_media_stand_in(step, binding, references)) is not None
        }
        args = _validate_arguments(step, i, _arguments_for_validation(step, input_values))
        costs[step.id] = round(float(_tool(step).cost(args)), 2)
    return costs


def plan_cost(plan: Plan) -> float:
    """Estimated capacity units of the whole plan: the sum of `step_costs`."""
    return round(sum(step_costs(plan).values()), 2)
