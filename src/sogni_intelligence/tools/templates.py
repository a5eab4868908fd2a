"""Workflow templates (spec §2.5, §5.2): caller inputs checked against a template's inputs, and
the compiler that turns a template plus those inputs into an inline workflow plan. The model is
in `template_model`, the check of a template before it is stored in `template_checks`.

Compile rules (§5.2 leaves the details open; these are ours):

- A `fixed` stage compiles into one step `{id, toolName, arguments, dependsOn?}` with `id` = the
  stage id. Its `onError` becomes the step's run policy: `stop` (the default), `continue`,
  `skip`, or `retry_once` (`stop` after a second try).
- An `interactive` stage compiles into a step of `ask_clarifying_question` that the workflow does
  not run but pauses on until the user answers (or `timeoutSeconds` pass); every later stage
  waits for it (`after`), and may use the answer in its args as `$answers.<stage id>`.
- A `batch` stage compiles into one step per item of its list input (`<stage id>_<n>`, from 1,
  in the list's order); `$<itemName>` (or `${<itemName>}`) in the item stage's args is the item,
  a media item bound like a media input. More than 12 items, or more than 12 steps in all, is a
  400. `partialExecutionEnabled` lets the other items go on when one fails (else the workflow
  stops), `maxAttemptsPerItem` tries an item again. A later stage's `dependsOn` naming the batch
  stage binds to every item's step, in order.
- `requiredArtifactsIn` names artifacts earlier stages `produces`: the stage waits for those
  stages (`after`) and is skipped when one of them was skipped. When no stage producing one runs
  for the given inputs (conditions), the start is a 400 naming the stage and the artifact.
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
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sogni_intelligence.errors import invalid_request
from sogni_intelligence.tools.plan_model import MAX_STEPS, USER_INPUT_TOOL
from sogni_intelligence.tools.template_model import (
    INPUT_MEDIA,
    MAX_BATCH_ITEMS,
    MEDIA_TYPES,
    PLACEHOLDER,
    BatchStage,
    FixedStage,
    InteractiveStage,
    WorkflowTemplate,
    exact_placeholder,
    parse_template,
    value_problem,
)

_DROP = object()  # an exact placeholder of an optional input that has no value


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
        problem = value_problem(spec, value)
        if problem:
            raise invalid_request(
                f"Input {spec.name!r} {problem}.", f"inputs.{spec.name}", "invalid_input"
            )
        values[spec.name] = value
    return values


# --- compilation (§5.2) ---------------------------------------------------------------------


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
            name = exact_placeholder(value)
            if name is not None:
                return self._lookup(name)

            def text(match: re.Match[str]) -> str:
                found = self._lookup(match.group(1) or match.group(2))
                return "" if found is _DROP else _as_text(found)

            return PLACEHOLDER.sub(text, value)
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
    """Validate the caller's raw `inputs` and compile the template's stages.

    Returns `{"title", "steps", "media_references", "inputs"}`: `title` and `steps` form the
    inline workflow input (§5.1); `media_references` are the template's media inputs, to be
    appended *after* `existing_media` (the request's own references, whose per-kind counts offset
    the `$input_media` positions); `inputs` are the validated values, for the run's snapshot.
    """
    template = parse_template(template)
    values = validate_inputs(template, inputs)
    compiled = compile_stages(template, values, existing_media)
    if not compiled.steps:
        raise invalid_request(
            f"Template {template.name!r} compiled to no steps: every stage's condition was off.",
            "inputs",
            "empty_workflow",
        )
    if len(compiled.steps) > MAX_STEPS:
        raise invalid_request(
            f"Template {template.name!r} compiled to {len(compiled.steps)} steps for these "
            f"inputs (its batch stages fan out once per item); a workflow runs at most "
            f"{MAX_STEPS}.",
            "inputs",
            "too_many_steps",
        )
    return {
        "title": template.name,
        "steps": compiled.steps,
        "media_references": compiled.references,
        "inputs": values,
    }


@dataclass
class CompiledStages:
    """The plan steps of a template's stages, the media references of its inputs, and for each
    step the position of the stage it came from and, per binding of the step, the position of
    the stage's `dependsOn` entry it came from (None: made for a media input)."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    references: list[dict[str, Any]] = field(default_factory=list)
    origins: list[int] = field(default_factory=list)
    binding_origins: list[list[int | None]] = field(default_factory=list)


def _media_positions(
    template: WorkflowTemplate,
    values: Mapping[str, Any],
    existing_media: Iterable[Mapping[str, Any]],
    compiled: CompiledStages,
) -> dict[str, list[int]]:
    """Register each media input value as a reference; its position among the references of
    its kind, per input."""
    counts = dict.fromkeys(MEDIA_TYPES, 0)
    for reference in existing_media:
        kind = reference.get("kind")
        if kind in counts:
            counts[kind] += 1
    positions: dict[str, list[int]] = {}
    for spec in template.inputs:
        if spec.type not in MEDIA_TYPES or spec.name not in values:
            continue
        urls = values[spec.name] if spec.multiple is not None else [values[spec.name]]
        positions[spec.name] = []
        for url in urls:
            compiled.references.append({"kind": spec.type, "url": url, "id": spec.name})
            positions[spec.name].append(counts[spec.type])
            counts[spec.type] += 1
    return positions


def _media_bindings(kind: str, key: str, positions: Iterable[int]) -> list[dict[str, Any]]:
    return [
        {
            "sourceStepId": INPUT_MEDIA,
            "sourceArtifactIndex": position,
            "targetArgument": key,
            "transform": f"{kind}_index",
            "mediaType": kind,
            "required": True,
        }
        for position in positions
    ]


def _on_error(stage: FixedStage) -> dict[str, Any]:
    """A stage's `onError` as the step's run policy; a template stage stops the workflow by
    default."""
    if stage.on_error == "retry_once":
        return {"onError": "stop", "maxAttempts": 2}
    return {"onError": stage.on_error or "stop"}


class _Compiler:
    def __init__(
        self,
        template: WorkflowTemplate,
        values: Mapping[str, Any],
        existing_media: Iterable[Mapping[str, Any]],
    ) -> None:
        self.template = template
        self.values = values
        self.out = CompiledStages()
        self.positions = _media_positions(template, values, existing_media, self.out)
        #: The step ids each compiled stage became (a batch stage: one per item).
        self.steps_of: dict[str, list[str]] = {}
        #: The step ids that make each named artifact (`produces`).
        self.makers: dict[str, list[str]] = {}
        #: Interactive steps so far: every later stage waits for their answers.
        self.questions: list[str] = []

    def arguments(
        self, stage_id: str, args: Mapping[str, Any], item: tuple[BatchStage, Any, int] | None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The arguments of one step, and the `$input_media` bindings of its media inputs."""
        substitution = _Substitution(self.template, self.values, stage_id)
        arguments: dict[str, Any] = {}
        bindings: list[dict[str, Any]] = []
        for key, raw in args.items():
            if item is not None:
                batch, value, position = item
                over = self.template.input(batch.over_input)
                if isinstance(raw, str) and batch.item_pattern().fullmatch(raw):
                    if over is not None and over.type in MEDIA_TYPES:
                        spot = self.positions[over.name][position]
                        bindings += _media_bindings(over.type, key, [spot])
                    else:
                        arguments[key] = value
                    continue
                raw = _with_item(raw, batch, value)
            name = exact_placeholder(raw)
            spec = self.template.input(name) if name is not None else None
            if spec is not None and spec.type in MEDIA_TYPES:
                bindings += _media_bindings(spec.type, key, self.positions.get(spec.name, []))
                continue
            value = substitution.apply(raw)
            if value is not _DROP:
                arguments[key] = value
        return arguments, bindings

    def waits(self, stage: FixedStage | BatchStage) -> list[str]:
        """What a stage waits for besides its bindings: earlier questions, and the steps that
        make the artifacts it requires. A 400 when none of them runs for these inputs."""
        after = list(self.questions)
        for name in stage.required_artifacts_in or []:
            makers = self.makers.get(name)
            if not makers:
                raise invalid_request(
                    f"Stage {stage.id!r} requires the artifact {name!r}, but no stage that "
                    "produces it runs for these inputs.",
                    f"stages.{stage.id}.requiredArtifactsIn",
                    "missing_artifact",
                )
            after += makers
        return list(dict.fromkeys(after))

    def add(
        self,
        k: int,
        stage_id: str,
        step: dict[str, Any],
        produces: list[str] | None,
        own_bindings: list[int] | None = None,
    ) -> None:
        made = len(step.get("dependsOn", [])) - len(own_bindings or [])
        self.out.steps.append(step)
        self.out.origins.append(k)
        self.out.binding_origins.append([None] * made + list(own_bindings or []))
        self.steps_of.setdefault(stage_id, []).append(step["id"])
        for name in produces or []:
            self.makers.setdefault(name, []).append(step["id"])

    def fixed(self, k: int, stage: FixedStage) -> None:
        if stage.condition is not None:
            name = exact_placeholder(stage.condition)
            if name is None:
                raise invalid_request(
                    f"Stage {stage.id!r} has an unsupported condition; use a single "
                    '"$inputs.<name>" placeholder.',
                    f"stages.{stage.id}.condition",
                    "unsupported_condition",
                )
            condition = _Substitution(self.template, self.values, stage.id).apply(stage.condition)
            if not _truthy(condition):
                return
        arguments, bindings = self.arguments(stage.id, stage.args, None)
        own: list[int] = []
        for j, binding in enumerate(stage.depends_on or []):
            source = binding.get("sourceStepId")
            # A batch stage's binding goes to each of its items; one to a stage left out by its
            # condition is dropped.
            for step_id in (
                [INPUT_MEDIA] if source == INPUT_MEDIA else self.steps_of.get(source, [])
            ):
                bindings.append({**binding, "sourceStepId": step_id})
                own.append(j)
        step: dict[str, Any] = {"id": stage.id, "toolName": stage.tool, "arguments": arguments}
        if bindings:
            step["dependsOn"] = bindings
        step = _with_waits(step, self.waits(stage)) | _on_error(stage)
        self.add(k, stage.id, step, stage.produces, own)

    def interactive(self, k: int, stage: InteractiveStage) -> None:
        question = _Substitution(self.template, self.values, stage.id).apply(
            stage.user_message or stage.system_prompt
        )
        step = {
            "id": stage.id,
            "toolName": USER_INPUT_TOOL,
            "arguments": {"question": "" if question is _DROP else question},
            "answerTimeoutSeconds": stage.timeout_seconds,
            "onError": "stop",
        }
        self.add(k, stage.id, _with_waits(step, self.questions), None)
        self.questions.append(stage.id)

    def batch(self, k: int, stage: BatchStage) -> None:
        items = self.values.get(stage.over_input, [])
        if not isinstance(items, list):
            raise invalid_request(
                f"Batch stage {stage.id!r} fans out over input {stage.over_input!r}, which is "
                "not a list.",
                f"inputs.{stage.over_input}",
                "invalid_batch",
            )
        if len(items) > MAX_BATCH_ITEMS:
            raise invalid_request(
                f"Batch stage {stage.id!r} got {len(items)} items in input "
                f"{stage.over_input!r}; a batch takes at most {MAX_BATCH_ITEMS}.",
                f"inputs.{stage.over_input}",
                "batch_too_long",
            )
        waits = self.waits(stage)
        policy: dict[str, Any] = {
            "onError": "continue" if stage.partial_execution_enabled else "stop"
        }
        if stage.max_attempts_per_item is not None:
            policy["maxAttempts"] = stage.max_attempts_per_item
        for position, item in enumerate(items):
            arguments, bindings = self.arguments(
                stage.id, stage.item_stage.args, (stage, item, position)
            )
            step: dict[str, Any] = {
                "id": f"{stage.id}_{position + 1}",
                "toolName": stage.item_stage.tool,
                "arguments": arguments,
            }
            if bindings:
                step["dependsOn"] = bindings
            self.add(k, stage.id, _with_waits(step, waits) | policy, stage.produces)


def _with_waits(step: dict[str, Any], after: list[str]) -> dict[str, Any]:
    return {**step, "after": list(after)} if after else step


def _with_item(value: Any, batch: BatchStage, item: Any) -> Any:
    """`value` with the batch item placeholder replaced: a string that is exactly one takes the
    item itself, one inside a longer string its text."""
    pattern = batch.item_pattern()
    if isinstance(value, str):
        if pattern.fullmatch(value):
            return item
        return pattern.sub(lambda _: _as_text(item), value)
    if isinstance(value, Mapping):
        return {key: _with_item(part, batch, item) for key, part in value.items()}
    if isinstance(value, list | tuple):
        return [_with_item(part, batch, item) for part in value]
    return value


def compile_stages(
    template: WorkflowTemplate,
    values: Mapping[str, Any],
    existing_media: Iterable[Mapping[str, Any]],
) -> CompiledStages:
    """The steps and media references of the template's stages for these input `values`."""
    compiler = _Compiler(template, values, existing_media)
    for k, stage in enumerate(template.stages):
        if isinstance(stage, FixedStage):
            compiler.fixed(k, stage)
        elif isinstance(stage, InteractiveStage):
            compiler.interactive(k, stage)
        else:
            compiler.batch(k, stage)
    return compiler.out
