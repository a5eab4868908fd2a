"""Checking a template before it is stored (create, PATCH, fork): each fixed stage is compiled
with stand-in inputs and validated like a plan step, so a template that can only fail later is
refused with a 400 that names the stage.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from sogni_intelligence.errors import ServiceError, invalid_request
from sogni_intelligence.tools.plan_model import STAND_IN_URL
from sogni_intelligence.tools.plans import normalise_plan, step_tool_names
from sogni_intelligence.tools.template_model import (
    INPUT_MEDIA,
    MAX_STAGES,
    MEDIA_TYPES,
    BatchStage,
    FixedStage,
    InteractiveStage,
    WorkflowTemplate,
    exact_placeholder,
    placeholders_in,
)
from sogni_intelligence.tools.templates import (
    compile_stages,
)

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
        if any(name in open_inputs for name in placeholders_in(raw))
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
        if stage.condition is not None and exact_placeholder(stage.condition) is None:
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
    steps, references = compile_stages(checkable, _stand_in_values(template, STAND_IN_URL), ())
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
