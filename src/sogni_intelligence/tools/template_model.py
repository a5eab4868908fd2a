"""The workflow template document (spec §5.3): its inputs, its stages (fixed, interactive,
batch) and its metadata, read in either spelling a client uses (camelCase or snake_case), and
what makes a value right for an input (its type, range, options, count).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
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

from sogni_intelligence.errors import invalid_request
from sogni_intelligence.tools.plan_model import (
    DEFAULT_ANSWER_WAIT_S,
    MAX_ANSWER_WAIT_S,
    MAX_ATTEMPTS,
)

MAX_INPUTS = 16
MAX_STAGES = 32
#: The most items one batch stage fans out over (a workflow has at most 12 steps in all).
MAX_BATCH_ITEMS = 12
MEDIA_TYPES = ("image", "video", "audio")
INPUT_MEDIA = "$input_media"

_NAME = r"[A-Za-z0-9_-]{1,64}"
PLACEHOLDER = re.compile(rf"\$\{{inputs\.({_NAME})\}}|\$inputs\.({_NAME})")


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
            problem = value_problem(self, self.default)
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
    """A pause for the user: the workflow asks `userMessage` (else `systemPrompt`) and waits
    up to `timeoutSeconds` for the answer."""

    type: Literal["interactive"] = Field(alias="type")
    id: str = Field(min_length=1, max_length=128)
    system_prompt: str
    allowed_tools: list[str] = Field(default_factory=list)
    user_message: str | None = None
    timeout_seconds: int = Field(default=DEFAULT_ANSWER_WAIT_S, ge=1, le=MAX_ANSWER_WAIT_S)


class BatchItemStage(_Model):
    """The step a batch stage runs once per item; `$<itemName>` in `args` is the item."""

    tool: str = Field(min_length=1, max_length=128)
    args: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None


class BatchStage(_Model):
    """One step per item of a list input (`overBinding`, `"$inputs.<name>"` or the name), in
    the list's order."""

    type: Literal["batch"] = Field(alias="type")
    id: str = Field(min_length=1, max_length=128)
    over_binding: str
    item_name: str = Field(pattern=rf"^{_NAME}$")
    item_stage: BatchItemStage
    concurrency: int | None = Field(default=None, ge=1)
    partial_execution_enabled: bool = False
    max_attempts_per_item: int | None = Field(default=None, ge=1, le=MAX_ATTEMPTS)
    produces: list[str] | None = None
    required_artifacts_in: list[str] | None = None

    @property
    def over_input(self) -> str:
        return exact_placeholder(self.over_binding) or self.over_binding

    def item_pattern(self) -> re.Pattern[str]:
        name = re.escape(self.item_name)
        return re.compile(rf"\$\{{{name}\}}|\${name}(?![A-Za-z0-9_-])")


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
                used = [stage.args, stage.condition]
            elif isinstance(stage, BatchStage):
                used = [stage.item_stage.args]
                if stage.over_input not in known:
                    raise ValueError(
                        f"stage {stage.id!r} fans out over {stage.over_binding!r}, no such input"
                    )
            else:
                used = [stage.system_prompt, stage.user_message]
            for name in placeholders_in(used):
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


def value_problem(spec: TemplateInput, value: Any) -> str | None:
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


def placeholders_in(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        for match in PLACEHOLDER.finditer(value):
            yield match.group(1) or match.group(2)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from placeholders_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from placeholders_in(item)


def exact_placeholder(value: Any) -> str | None:
    """The input name when `value` is a string holding exactly one placeholder."""
    if isinstance(value, str):
        match = PLACEHOLDER.fullmatch(value)
        if match:
            return match.group(1) or match.group(2)
    return None
