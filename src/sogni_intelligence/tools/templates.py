"""Workflow templates (spec §2.5, §5.2): caller inputs checked against a template's inputs, and
the compiler that turns a template plus those inputs into an inline workflow plan. The model is
in `template_model`, the check of a template before it is stored in `template_checks`.

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
import re
from collections.abc import Iterable, Mapping
from typing import Any

from sogni_intelligence.errors import invalid_request
from sogni_intelligence.tools.template_model import (
    INPUT_MEDIA,
    MEDIA_TYPES,
    PLACEHOLDER,
    FixedStage,
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
    steps, references = compile_stages(template, values, existing_media)
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


def compile_stages(
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
            name = exact_placeholder(stage.condition)
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
            name = exact_placeholder(raw)
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
