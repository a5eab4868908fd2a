"""Checking a template before it is stored (create, PATCH, fork): each fixed stage is compiled
with stand-in inputs and validated like a plan step, so a template that can only fail later is
refused with a 400 that names the stage.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import Any

from sogni_intelligence.errors import ServiceError, invalid_request
from sogni_intelligence.tools.plan_model import STAND_IN_URL
from sogni_intelligence.tools.plans import normalise_plan, step_tool_names
from sogni_intelligence.tools.template_model import (
    INPUT_MEDIA,
    MAX_BATCH_ITEMS,
    MAX_STAGES,
    MEDIA_TYPES,
    BatchStage,
    FixedStage,
    InteractiveStage,
    Stage,
    WorkflowTemplate,
    exact_placeholder,
    placeholders_in,
)
from sogni_intelligence.tools.templates import compile_stages

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


def _open_arguments(
    template: WorkflowTemplate, stage: FixedStage | InteractiveStage | BatchStage
) -> frozenset[str]:
    """Arguments fed by a text or number input with no default (or a batch item of one): their
    stand-in shows the type, but any value of that type may come, so a range or choice the
    stand-in misses is no fault."""
    open_inputs = {
        spec.name
        for spec in template.inputs
        if spec.type in ("text", "number") and spec.default is None
    }
    if isinstance(stage, FixedStage):
        args = stage.args
    elif isinstance(stage, InteractiveStage):
        args = {"question": stage.user_message or stage.system_prompt}
    else:
        args = stage.item_stage.args

    def is_open(raw: Any) -> bool:
        if any(name in open_inputs for name in placeholders_in(raw)):
            return True
        return (
            isinstance(stage, BatchStage)
            and stage.over_input in open_inputs
            and stage.item_pattern().search(json.dumps(raw)) is not None
        )

    return frozenset(key for key, raw in args.items() if is_open(raw))


def _checkable(stage: Stage) -> Stage:
    """The stage as the plan validator should see it: with its condition on (every stage is
    checked)."""
    if isinstance(stage, FixedStage):
        return stage.model_copy(update={"condition": None})
    return stage


def _refusal(stage: str, message: str, param: str) -> ServiceError:
    return invalid_request(f"Template stage {stage!r}: {message}", param, "invalid_template")


def _stage_param(
    plan_param: str, step: Mapping[str, Any], origins: list[int | None], stage: Stage
) -> str:
    """The tail of the plan validator's `param` for one step (`.arguments.width` of
    `input.steps[i].arguments.width`) as the stage's (`.args.width`, a batch stage's
    `.itemStage.args.width`, an interactive stage's question field). `origins` says which of
    the stage's `dependsOn` entries each binding of the step came from (None: made for a media
    input, so the fault is in the argument that named the input)."""
    if isinstance(stage, InteractiveStage):
        return ".userMessage" if stage.user_message else ".systemPrompt"
    rest = re.sub(r"^\.toolName", ".tool", plan_param)
    rest = re.sub(r"^\.arguments", ".args", rest)
    binding = re.match(r"^\.dependsOn\[(\d+)\](.*)", rest)
    if binding is not None:
        position = int(binding.group(1))
        own = origins[position]
        if own is None:
            rest = f".args.{step['dependsOn'][position]['targetArgument']}"
        else:
            rest = f".dependsOn[{own}]{binding.group(2)}"
    if isinstance(stage, BatchStage) and rest.startswith((".args", ".tool")):
        return ".itemStage" + rest
    return rest


def check_template(template: WorkflowTemplate, catalog: Collection[str]) -> None:
    """Refuse (400 `invalid_template`, `param` at the stage, the message naming it) a template
    that could never run as written: a stage tool that is unknown or not a workflow step, stage
    arguments its tool refuses, a `dependsOn` naming no stage, a stage not before it or an
    interactive stage (it makes no artifacts), an unsupported condition, a `requiredArtifactsIn`
    naming an artifact no earlier stage `produces`, a batch over an input that is not a list or
    may hold more than a batch takes; an interactive stage's `allowedTools` must name catalog
    tools. The stages are compiled with stand-in inputs and checked by the inline-plan
    validator, so templates and plans follow one set of rules. `catalog` names every hosted
    tool (`tools.catalog.CATALOG`, which lists the composition tools that use this module, so it
    is passed in): a stage naming a tool that is not a step hears so, not that it is unknown."""

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
    produced: set[str] = set()
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
            check_step_tool(stage.id, stage.item_stage.tool, f"stages[{k}].itemStage.tool")
            _check_batch_list(template, k, stage)
        else:
            _check_fixed(template, k, stage, positions)
            check_step_tool(stage.id, stage.tool, f"stages[{k}].tool")
        for j, name in enumerate(stage.required_artifacts_in or []):
            if name not in produced:
                raise _refusal(
                    stage.id,
                    f"requires the artifact {name!r}, which no earlier stage produces.",
                    f"stages[{k}].requiredArtifactsIn[{j}]",
                )
        produced.update(stage.produces or [])

    checkable = template.model_copy(
        update={"stages": [_checkable(stage) for stage in template.stages]}
    )
    compiled = compile_stages(checkable, _stand_in_values(template, STAND_IN_URL), ())
    stages = [template.stages[k] for k in compiled.origins]
    try:
        normalise_plan(
            {"title": template.name, "steps": compiled.steps},
            compiled.references,
            max_steps=max(MAX_STAGES, len(compiled.steps)),
            open_arguments={i: _open_arguments(template, stage) for i, stage in enumerate(stages)},
        )
    except ServiceError as error:
        match = re.match(r"^input\.steps\[(\d+)\](.*)$", error.param or "")
        if match is None:  # not about one step; the checks above leave no such case
            raise invalid_request(error.message, "stages", "invalid_template") from error
        i = int(match.group(1))
        tail = _stage_param(
            match.group(2), compiled.steps[i], compiled.binding_origins[i], stages[i]
        )
        raise _refusal(
            stages[i].id, error.message, f"stages[{compiled.origins[i]}]{tail}"
        ) from error


def _check_fixed(
    template: WorkflowTemplate, k: int, stage: FixedStage, positions: Mapping[str, int]
) -> None:
    if stage.condition is not None and exact_placeholder(stage.condition) is None:
        raise _refusal(
            stage.id,
            'the condition must be a single "$inputs.<name>" placeholder.',
            f"stages[{k}].condition",
        )
    for j, binding in enumerate(stage.depends_on or []):
        source = binding.get("sourceStepId")
        param = f"stages[{k}].dependsOn[{j}].sourceStepId"
        if not isinstance(source, str) or source == INPUT_MEDIA:
            continue
        if source not in positions:
            raise _refusal(
                stage.id, f"dependsOn names {source!r}, no stage of this template.", param
            )
        if positions[source] >= k:
            raise _refusal(
                stage.id,
                f"dependsOn names {source!r}, which is not before it: a stage may use only "
                "the stages above it.",
                param,
            )
        if isinstance(template.stages[positions[source]], InteractiveStage):
            raise _refusal(
                stage.id,
                f"dependsOn names {source!r}, an interactive stage: it makes no artifacts.",
                param,
            )


def _check_batch_list(template: WorkflowTemplate, k: int, stage: BatchStage) -> None:
    """The input a batch fans out over must be a list that cannot outgrow a batch."""
    spec = template.input(stage.over_input)
    assert spec is not None  # the model checked that the input exists
    if spec.multiple is None:
        raise _refusal(
            stage.id,
            f"fans out over input {spec.name!r}, which is not a list (give it `multiple`).",
            f"stages[{k}].overBinding",
        )
    most = spec.multiple.max if spec.multiple.max is not None else spec.multiple.min
    if most > MAX_BATCH_ITEMS:
        raise _refusal(
            stage.id,
            f"input {spec.name!r} may hold {most} items; a batch takes at most {MAX_BATCH_ITEMS}.",
            f"stages[{k}].overBinding",
        )
