"""Workflow templates (spec §2.5, §5.2, §5.3): the model, input validation, the check against
the catalog and the compiler that turns a template plus caller inputs into an inline workflow plan.

Compile rules (§5.2 leaves the details open; these are ours):

- Only `fixed` stages compile, each into one step `{id, toolName, arguments, dependsOn?}` with
  `id` = the stage id. An `interactive` or `batch` stage makes compilation fail with a 400 that
  names the stage (they are stored, not run, for now).
- `"$inputs.<name>"` (or `"${inputs.<name>}"`) placeholders are replaced anywhere in a stage's
  `args`, recursively through objects and lists:
  - a string that is exactly one placeholder takes the input's value with its own type (a number
    stays a number, a `multiple` input a list); if the optional input has no value, the key (or
    list item) is dropped;
  - placeholders inside a longer string are interpolated as text (booleans as `true`/`false`,
    lists joined with ", ", a missing value as "");
  - a placeholder naming no input of the template is a 400.
- Media inputs (`image`/`video`/`audio`) are http(s) URLs. Every media value becomes one entry of
  `media_references` (`{"kind", "url", "id": <input name>}`) in the order of `template.inputs`,
  list items in order. A *top-level* argument that is exactly a media placeholder is removed from
  the arguments and bound instead with a `$input_media` dependsOn binding per value:
  `{"sourceStepId": "$input_media", "sourceArtifactIndex": <position among the references of
  that kind>, "targetArgument": <argument>, "transform": "<kind>_index", "mediaType": <kind>,
  "required": true}`. Media placeholders anywhere else (nested, or inside a longer string) are
  substituted with the URL itself.
- A fixed stage may carry `dependsOn` bindings (the inline-plan format of §5.1) to use an earlier
  stage's artifacts; they are copied into the step after the generated media bindings.
- `condition`, when set, must be a placeholder: the stage is compiled only when that input's value
  is truthy (bindings to a skipped stage are dropped). Anything else is a 400.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

import jsonschema
from pydantic import (
    AliasChoices,
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from sogni_intelligence.errors import ServiceError, invalid_request
from sogni_intelligence.tools.plans import STAND_IN_URL, normalise_plan, step_tool_names

MAX_INPUTS = 16
MAX_STAGES = 32
MEDIA_TYPES = ("image", "video", "audio")
INPUT_MEDIA = "$input_media"

_NAME = r"[A-Za-z0-9_-]{1,64}"
_PLACEHOLDER = re.compile(rf"\$\{{inputs\.({_NAME})\}}|\$inputs\.({_NAME})")
_DROP = object()  # an exact placeholder of an optional input that has no value


# --- the template model (§5.3) --------------------------------------------------------------


def _spellings(name: str) -> AliasChoices:
    return AliasChoices(to_camel(name), name)


class _Model(BaseModel):
    """camelCase on the wire (as the spec names fields), snake_case accepted too; unknown fields
    are ignored."""

    model_config = ConfigDict(
        extra="ignore",
        populate_by_name=True,
        alias_generator=AliasGenerator(validation_alias=_spellings, serialization_alias=to_camel),
    )


class Range(_Model):
    min: float = Field(ge=0)
    max: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min > self.max:
            raise ValueError("min must not exceed max")
        return self


class Multiple(_Model):
    min: int = Field(default=0, ge=0)
    max: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Multiple:
        if self.max is not None and self.min > self.max:
            raise ValueError("multiple.min must not exceed multiple.max")
        return self


class SelectOption(_Model):
    value: str | int | float | bool
    label: str | None = None


class TemplateInput(_Model):
    name: str = Field(pattern=rf"^{_NAME}$")
    type: Literal["image", "audio", "video", "text", "number", "select", "boolean"]
    required: bool = False
    description: str = ""
    default: Any = None
    options: list[SelectOption] | None = None
    multiple: Multiple | None = None
    internal: bool = False
    json_schema: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> TemplateInput:
        if self.type == "select" and not self.options:
            raise ValueError(f"select input {self.name!r} needs at least one option")
        if self.json_schema is not None:
            try:
                jsonschema.validators.validator_for(self.json_schema).check_schema(self.json_schema)
            except jsonschema.SchemaError as exc:
                raise ValueError(
                    f"input {self.name!r} has an invalid jsonSchema: {exc.message}"
                ) from None
        if self.default is not None:
            problem = _value_problem(self, self.default)
            if problem:
                raise ValueError(f"default of input {self.name!r} {problem}")
        return self


OnError = Literal["stop", "continue", "skip", "retry_once"]


class FixedStage(_Model):
    type: Literal["fixed"] = Field(alias="type")
    id: str = Field(min_length=1, max_length=128)
    tool: str = Field(min_length=1, max_length=128)
    args: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None
    produces: list[str] | None = None
    required_artifacts_in: list[str] | None = None
    condition: Any = None
    on_error: OnError | None = None
    depends_on: list[dict[str, Any]] | None = None


class InteractiveStage(_Model):
    type: Literal["interactive"] = Field(alias="type")
    id: str = Field(min_length=1, max_length=128)
    system_prompt: str
    allowed_tools: list[str] = Field(default_factory=list)
    user_message: str | None = None


class BatchStage(_Model):
    type: Literal["batch"] = Field(alias="type")
    id: str = Field(min_length=1, max_length=128)
    over_binding: str
    item_name: str
    item_stage: dict[str, Any]
    concurrency: int | None = Field(default=None, ge=1)
    partial_execution_enabled: bool = False
    max_attempts_per_item: int | None = Field(default=None, ge=1)


Stage = Annotated[FixedStage | InteractiveStage | BatchStage, Field(discriminator="type")]


class Author(_Model):
    user_id: str
    display_name: str | None = None


class WorkflowTemplate(_Model):
    id: str | None = None
    version: int = Field(default=1, ge=1)
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    brief: str | None = None
    category: Literal[
        "portrait", "video-social", "makeover", "cinematic", "music", "analysis", "custom", "other"
    ] = "custom"
    stability: Literal["production", "beta", "experimental"] = "experimental"
    author: Literal["system"] | Author | None = None
    visibility: Literal["private", "public"] = "private"
    inputs: list[TemplateInput] = Field(default_factory=list, max_length=MAX_INPUTS)
    stages: list[Stage] = Field(min_length=1, max_length=MAX_STAGES)
    review_focus: Any = None
    estimated_credits: Range | None = None
    estimated_capacity_units: Range | None = None
    expose_to_llm: bool = Field(
        default=False,
        validation_alias=AliasChoices("exposeToLLM", "exposeToLlm", "expose_to_llm"),
        serialization_alias="exposeToLLM",
    )
    llm_priority: int = 100
    graph: Any = None
    thumbnail_url: str | None = None
    preview_artifacts: list[Any] | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> WorkflowTemplate:
        names = [spec.name for spec in self.inputs]
        if len(set(names)) != len(names):
            raise ValueError("input names must be unique")
        ids = [stage.id for stage in self.stages]
        if len(set(ids)) != len(ids):
            raise ValueError("stage ids must be unique")
        known = set(names)
        for stage in self.stages:
            if isinstance(stage, FixedStage):
                for name in _placeholders([stage.args, stage.condition]):
                    if name not in known:
                        raise ValueError(f"stage {stage.id!r} uses $inputs.{name}, no such input")
        return self

    def input(self, name: str) -> TemplateInput | None:
        return next((spec for spec in self.inputs if spec.name == name), None)

    def dump(self) -> dict[str, Any]:
        """The wire/storage form: camelCase, unset optional fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def parse_template(data: Any) -> WorkflowTemplate:
    """A `WorkflowTemplate` from a wire/stored dict; a 400 naming the first bad field otherwise."""
    if isinstance(data, WorkflowTemplate):
        return data
    if not isinstance(data, Mapping):
        raise invalid_request("A workflow template must be a JSON object.", "template")
    try:
        return WorkflowTemplate.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"] if not _is_union_tag(part))
        message = str(first["msg"]).removeprefix("Value error, ")
        raise invalid_request(
            f"Invalid workflow template: {where or 'template'}: {message}",
            where or "template",
            "invalid_template",
        ) from None


def _is_union_tag(part: Any) -> bool:
    return part in ("fixed", "interactive", "batch")


# --- inputs (§5.2) --------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _media_problem(kind: str, value: Any) -> str | None:
    if not isinstance(value, str):
        return f"must be an http(s) URL of the {kind}"
    lowered = value.strip().lower()
    if lowered.startswith("data:"):
        return "must be an http(s) URL; data URIs are not accepted (upload the file first)"
    if not re.match(r"^https?://[^/\s?#]+", lowered):
        return f"must be an http(s) URL of the {kind}"
    return None


def _item_problem(spec: TemplateInput, value: Any) -> str | None:
    if spec.type in MEDIA_TYPES:
        return _media_problem(spec.type, value)
    if spec.type == "text" and not isinstance(value, str):
        return "must be a string"
    if spec.type == "number" and not _is_number(value):
        return "must be a number"
    if spec.type == "boolean" and not isinstance(value, bool):
        return "must be true or false"
    if spec.type == "select":
        allowed = [option.value for option in spec.options or []]
        if not any(type(choice) is type(value) and choice == value for choice in allowed):
            return "must be one of " + ", ".join(json.dumps(choice) for choice in allowed)
    if spec.json_schema is not None:
        try:
            jsonschema.validate(value, spec.json_schema)
        except jsonschema.ValidationError as exc:
            return f"does not match its jsonSchema: {exc.message}"
    return None


def _value_problem(spec: TemplateInput, value: Any) -> str | None:
    """What is wrong with `value` for `spec` (as a sentence tail), or None."""
    if spec.multiple is None:
        if isinstance(value, list):
            return "takes a single value, not a list"
        return _item_problem(spec, value)
    if not isinstance(value, list):
        return "must be a list"
    low, high = spec.multiple.min, spec.multiple.max
    if len(value) < low or (high is not None and len(value) > high):
        span = f"{low}..{high}" if high is not None else f"at least {low}"
        return f"must have {span} values (got {len(value)})"
    for position, item in enumerate(value):
        problem = _item_problem(spec, item)
        if problem:
            return f"item {position} {problem}"
    return None


def validate_inputs(template: WorkflowTemplate | Mapping[str, Any], inputs: Any) -> dict[str, Any]:
    """The caller's `inputs` checked against `template.inputs[]`, defaults applied and internal
    inputs seeded with their defaults. Optional inputs with neither a value nor a default are
    left out. Every 400 names the input (`param` = `inputs.<name>`)."""
    template = parse_template(template)
    if inputs is None:
        inputs = {}
    if not isinstance(inputs, Mapping):
        raise invalid_request("inputs must be an object of input name to value.", "inputs")
    declared = {spec.name: spec for spec in template.inputs}
    for name in inputs:
        if name not in declared:
            known = ", ".join(declared) or "none"
            raise invalid_request(
                f"Unknown input {name!r} for template {template.name!r} (inputs: {known}).",
                f"inputs.{name}",
                "unknown_input",
            )
        if declared[name].internal and inputs[name] is not None:
            raise invalid_request(
                f"Input {name!r} is internal: the server sets it, a caller may not.",
                f"inputs.{name}",
                "internal_input",
            )
    values: dict[str, Any] = {}
    for spec in template.inputs:
        value = None if spec.internal else inputs.get(spec.name)
        if value is None:
            value = spec.default
        if value is None:
            if spec.required:
                raise invalid_request(
                    f"Missing required input {spec.name!r}.",
                    f"inputs.{spec.name}",
                    "missing_input",
                )
            continue
        problem = _value_problem(spec, value)
        if problem:
            raise invalid_request(
                f"Input {spec.name!r} {problem}.", f"inputs.{spec.name}", "invalid_input"
            )
        values[spec.name] = value
    return values


# --- compilation (§5.2) ---------------------------------------------------------------------


def _placeholders(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        for match in _PLACEHOLDER.finditer(value):
            yield match.group(1) or match.group(2)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _placeholders(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _placeholders(item)


def _exact(value: Any) -> str | None:
    """The input name when `value` is a string holding exactly one placeholder."""
    if isinstance(value, str):
        match = _PLACEHOLDER.fullmatch(value)
        if match:
            return match.group(1) or match.group(2)
    return None


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(_as_text(item) for item in value)
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


class _Substitution:
    def __init__(self, template: WorkflowTemplate, values: Mapping[str, Any], stage: str) -> None:
        self.template = template
        self.values = values
        self.stage = stage

    def _lookup(self, name: str) -> Any:
        if self.template.input(name) is None:
            raise invalid_request(
                f"Stage {self.stage!r} uses $inputs.{name}, but the template has no input "
                f"named {name!r}.",
                f"stages.{self.stage}.args",
                "unknown_placeholder",
            )
        return self.values.get(name, _DROP)

    def apply(self, value: Any) -> Any:
        if isinstance(value, str):
            name = _exact(value)
            if name is not None:
                return self._lookup(name)

            def text(match: re.Match[str]) -> str:
                found = self._lookup(match.group(1) or match.group(2))
                return "" if found is _DROP else _as_text(found)

            return _PLACEHOLDER.sub(text, value)
        if isinstance(value, Mapping):
            out = {key: self.apply(item) for key, item in value.items()}
            return {key: item for key, item in out.items() if item is not _DROP}
        if isinstance(value, list | tuple):
            return [item for item in (self.apply(item) for item in value) if item is not _DROP]
        return value


def _truthy(value: Any) -> bool:
    return value is not _DROP and value not in (None, False, "", 0) and value != []


def compile_template(
    template: WorkflowTemplate | Mapping[str, Any],
    inputs: Any,
    *,
    existing_media: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Validate the caller's raw `inputs` and compile the template's fixed stages.

    Returns `{"title", "steps", "media_references", "inputs"}`: `title` and `steps` form the
    inline workflow input (§5.1); `media_references` are the template's media inputs, to be
    appended *after* `existing_media` (the request's own references, whose per-kind counts offset
    the `$input_media` positions); `inputs` are the validated values, for the run's snapshot.
    """
    template = parse_template(template)
    values = validate_inputs(template, inputs)

    for stage in template.stages:
        if not isinstance(stage, FixedStage):
            raise invalid_request(
                f"Template stage {stage.id!r} has type {stage.type!r}, which is not supported "
                "yet: only fixed stages can run.",
                f"stages.{stage.id}",
                "unsupported_stage",
            )
    steps, references = _compile(template, values, existing_media)
    if not steps:
        raise invalid_request(
            f"Template {template.name!r} compiled to no steps: every stage's condition was off.",
            "inputs",
            "empty_workflow",
        )
    return {
        "title": template.name,
        "steps": steps,
        "media_references": references,
        "inputs": values,
    }


def _compile(
    template: WorkflowTemplate,
    values: Mapping[str, Any],
    existing_media: Iterable[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The steps and media references of the fixed stages for these input `values`."""
    counts = dict.fromkeys(MEDIA_TYPES, 0)
    for reference in existing_media:
        kind = reference.get("kind")
        if kind in counts:
            counts[kind] += 1
    references: list[dict[str, Any]] = []
    positions: dict[str, list[int]] = {}
    for spec in template.inputs:
        if spec.type not in MEDIA_TYPES or spec.name not in values:
            continue
        urls = values[spec.name] if spec.multiple is not None else [values[spec.name]]
        positions[spec.name] = []
        for url in urls:
            references.append({"kind": spec.type, "url": url, "id": spec.name})
            positions[spec.name].append(counts[spec.type])
            counts[spec.type] += 1

    steps: list[dict[str, Any]] = []
    skipped: set[str] = set()
    for stage in template.stages:
        assert isinstance(stage, FixedStage)
        substitution = _Substitution(template, values, stage.id)
        if stage.condition is not None:
            name = _exact(stage.condition)
            if name is None:
                raise invalid_request(
                    f"Stage {stage.id!r} has an unsupported condition; use a single "
                    '"$inputs.<name>" placeholder.',
                    f"stages.{stage.id}.condition",
                    "unsupported_condition",
                )
            if not _truthy(substitution.apply(stage.condition)):
                skipped.add(stage.id)
                continue
        arguments: dict[str, Any] = {}
        bindings: list[dict[str, Any]] = []
        for key, raw in stage.args.items():
            name = _exact(raw)
            spec = template.input(name) if name is not None else None
            if spec is not None and spec.type in MEDIA_TYPES:
                bindings.extend(
                    {
                        "sourceStepId": INPUT_MEDIA,
                        "sourceArtifactIndex": position,
                        "targetArgument": key,
                        "transform": f"{spec.type}_index",
                        "mediaType": spec.type,
                        "required": True,
                    }
                    for position in positions.get(spec.name, [])
                )
                continue
            value = substitution.apply(raw)
            if value is not _DROP:
                arguments[key] = value
        for binding in stage.depends_on or []:
            if binding.get("sourceStepId") not in skipped:
                bindings.append(dict(binding))
        step: dict[str, Any] = {"id": stage.id, "toolName": stage.tool, "arguments": arguments}
        if bindings:
            step["dependsOn"] = bindings
        steps.append(step)
    return steps, references


# --- checking a template before it is stored --------------------------------------------------

_STAND_IN_TEXT = "stand-in"


def _stand_in_values(template: WorkflowTemplate, media_url: str) -> dict[str, Any]:
    """A value of each input's declared type, as a caller could give it: the default, else the
    first option, `true`, 1, a text or `media_url`; a `multiple` input gets at least one. An
    internal input without a default stays unset, as it does at run time."""
    values: dict[str, Any] = {}
    for spec in template.inputs:
        if spec.default is not None:
            values[spec.name] = spec.default
            continue
        if spec.internal:
            continue
        if spec.type == "select":
            item: Any = (spec.options or [])[0].value
        elif spec.type in MEDIA_TYPES:
            item = media_url
        else:
            item = {"text": _STAND_IN_TEXT, "number": 1, "boolean": True}[spec.type]
        values[spec.name] = item if spec.multiple is None else [item] * max(spec.multiple.min, 1)
    return values


def _open_arguments(template: WorkflowTemplate, stage: FixedStage) -> frozenset[str]:
    """Arguments fed by a text or number input with no default: their stand-in shows the type,
    but any value of that type may come, so a range or choice the stand-in misses is no fault."""
    open_inputs = {
        spec.name
        for spec in template.inputs
        if spec.type in ("text", "number") and spec.default is None
    }
    return frozenset(
        key
        for key, raw in stage.args.items()
        if any(name in open_inputs for name in _placeholders(raw))
    )


def _checkable(stage: FixedStage, not_steps: set[str]) -> FixedStage:
    """The stage as the plan validator should see it: with its condition on (every stage is
    checked), and a binding to an interactive or batch stage (not a plan step: what it makes is
    known only when it runs) read as an optional binding of request media, so that its target
    argument and transform are still checked."""
    bindings = [
        {**binding, "sourceStepId": INPUT_MEDIA, "required": False}
        if binding.get("sourceStepId") in not_steps
        else binding
        for binding in stage.depends_on or []
    ]
    return stage.model_copy(update={"condition": None, "depends_on": bindings or None})


def _refusal(stage: str, message: str, param: str) -> ServiceError:
    return invalid_request(f"Template stage {stage!r}: {message}", param, "invalid_template")


def _stage_param(plan_param: str, step: Mapping[str, Any], own: int) -> str:
    """The tail of the plan validator's `param` for one step (`.arguments.width` of
    `input.steps[i].arguments.width`) as the stage's (`.args.width`); `own` is how many of the
    step's bindings are the stage's own `dependsOn` (they follow those its media inputs made)."""
    rest = re.sub(r"^\.toolName", ".tool", plan_param)
    rest = re.sub(r"^\.arguments", ".args", rest)
    binding = re.match(r"^\.dependsOn\[(\d+)\](.*)", rest)
    if binding is None:
        return rest
    made = len(step.get("dependsOn", [])) - own
    position = int(binding.group(1))
    if position < made:
        return f".args.{step['dependsOn'][position]['targetArgument']}"
    return f".dependsOn[{position - made}]{binding.group(2)}"


def check_template(template: WorkflowTemplate, catalog: Collection[str]) -> None:
    """Refuse (400 `invalid_template`, `param` at the stage, the message naming it) a template
    that could never run as written: a stage tool that is unknown or not a workflow step, stage
    arguments its tool refuses, a `dependsOn` naming no stage or a stage not before it, an
    unsupported condition; an interactive stage's `allowedTools` and a batch stage's
    `itemStage.tool` must name catalog tools too. The fixed stages are compiled with stand-in
    inputs and checked by the inline-plan validator, so templates and plans follow one set of
    rules. `catalog` names every hosted tool (`tools.catalog.CATALOG`, which lists the
    composition tools that use this module, so it is passed in): a stage naming a tool that is
    not a step hears so, not that the tool is unknown."""

    def check_step_tool(stage: str, name: Any, param: str) -> None:
        if not isinstance(name, str) or name not in catalog:
            raise _refusal(stage, f"no tool named {name!r} in the catalog.", param)
        if name not in step_tool_names():
            raise _refusal(
                stage,
                f"{name} cannot be a workflow stage: it is a composition or app tool that "
                "answers the LLM, not a media step.",
                param,
            )

    positions = {stage.id: k for k, stage in enumerate(template.stages)}
    fixed: list[tuple[int, FixedStage]] = []
    for k, stage in enumerate(template.stages):
        if isinstance(stage, InteractiveStage):
            for j, name in enumerate(stage.allowed_tools):
                if name not in catalog:
                    raise _refusal(
                        stage.id,
                        f"allowedTools names {name!r}, no tool of the catalog.",
                        f"stages[{k}].allowedTools[{j}]",
                    )
            continue
        if isinstance(stage, BatchStage):
            check_step_tool(stage.id, stage.item_stage.get("tool"), f"stages[{k}].itemStage.tool")
            continue
        check_step_tool(stage.id, stage.tool, f"stages[{k}].tool")
        if stage.condition is not None and _exact(stage.condition) is None:
            raise _refusal(
                stage.id,
                'the condition must be a single "$inputs.<name>" placeholder.',
                f"stages[{k}].condition",
            )
        for j, binding in enumerate(stage.depends_on or []):
            source = binding.get("sourceStepId")
            if not isinstance(source, str) or source == INPUT_MEDIA:
                continue
            if source not in positions:
                raise _refusal(
                    stage.id,
                    f"dependsOn names {source!r}, no stage of this template.",
                    f"stages[{k}].dependsOn[{j}].sourceStepId",
                )
            if positions[source] >= k:
                raise _refusal(
                    stage.id,
                    f"dependsOn names {source!r}, which is not before it: a stage may use only "
                    "the stages above it.",
                    f"stages[{k}].dependsOn[{j}].sourceStepId",
                )
        fixed.append((k, stage))

    if not fixed:
        return
    not_steps = {stage.id for stage in template.stages if not isinstance(stage, FixedStage)}
    checkable = template.model_copy(
        update={"stages": [_checkable(stage, not_steps) for _, stage in fixed]}
    )
    steps, references = _compile(checkable, _stand_in_values(template, STAND_IN_URL), ())
    try:
        normalise_plan(
            {"title": template.name, "steps": steps},
            references,
            max_steps=MAX_STAGES,
            open_arguments={
                i: _open_arguments(template, stage) for i, (_, stage) in enumerate(fixed)
            },
        )
    except ServiceError as error:
        match = re.match(r"^input\.steps\[(\d+)\](.*)$", error.param or "")
        if match is None:  # not about one step; the checks above leave no such case
            raise invalid_request(error.message, "stages", "invalid_template") from error
        i = int(match.group(1))
        k, stage = fixed[i]
        tail = _stage_param(match.group(2), steps[i], len(stage.depends_on or []))
        raise _refusal(stage.id, error.message, f"stages[{k}]{tail}") from error
