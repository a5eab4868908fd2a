"""Running a plan: the waves of steps that may run together, and the arguments of a step filled
in right before it runs from what its bindings name (artifact URLs or indices, subtitle cues,
overlays).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

from sogni_intelligence.media.srt import Cue, parse_srt, write_srt
from sogni_intelligence.tools.plan_model import (
    ANSWER,
    INDEX_TRANSFORMS,
    URL_TRANSFORMS,
    ArtifactRef,
    Binding,
    BindingError,
    InputMediaRef,
    Plan,
    PlanStep,
    StepOutput,
)
from sogni_intelligence.tools.plans import (
    input_media_value,
    plan_error,
    write_argument,
)

# --- execution order -----------------------------------------------------------------------------


def execution_order(plan: Plan) -> list[list[str]]:
    """Waves of step ids: every step of a wave depends only on earlier waves, so a wave may run
    in parallel. Within a wave, steps keep their `sequence` order."""
    by_id = {step.id: step for step in plan.steps}
    pending = {step.id: set(step.dependencies()) for step in plan.steps}
    done: set[str] = set()
    waves: list[list[str]] = []
    while pending:
        ready = [step_id for step_id, needs in pending.items() if needs <= done]
        if not ready:
            raise plan_error("Workflow steps depend on each other in a cycle", "input.steps")
        ready.sort(key=lambda step_id: by_id[step_id].sequence)
        waves.append(ready)
        done.update(ready)
        for step_id in ready:
            del pending[step_id]
    return waves


# --- steps not run ---------------------------------------------------------------------------


def held_back(
    step: PlanStep, statuses: dict[str, str], stopped_by: str | None
) -> tuple[str, str] | None:
    """Why a step is not run, as (its end status, the reason), or None to run it: the workflow
    stopped, a step it needs was skipped (so it is skipped), or a step it waits for without a
    binding failed (so it fails; a failed binding source fails it when it runs)."""
    if stopped_by is not None:
        return "skipped", f"not run: step '{stopped_by}' failed and stopped the workflow"
    for needed in step.needs():
        if statuses.get(needed) == "skipped":
            return "skipped", f"needs step '{needed}', which was skipped"
    for needed in step.after or []:
        if statuses.get(needed) == "failed":
            return "failed", f"needs step '{needed}', which failed"
    return None


# --- run-time bindings ---------------------------------------------------------------------------


def _pick_artifact(binding: Binding, artifacts: Iterable[ArtifactRef]) -> ArtifactRef | None:
    kind = binding.kind()
    candidates = [a for a in artifacts if kind is None or a.kind == kind]
    if binding.sourceArtifactId is not None:
        return next((a for a in candidates if a.id == binding.sourceArtifactId), None)
    if binding.sourceArtifactIndex < len(candidates):
        return candidates[binding.sourceArtifactIndex]
    return None


def cues_to_srt(cues: list[dict[str, Any]]) -> str:
    return write_srt([Cue(float(c["start"]), float(c["end"]), str(c["text"])) for c in cues])


def srt_to_cues(text: str) -> list[dict[str, Any]]:
    try:
        return [{"start": c.start, "end": c.end, "text": c.text} for c in parse_srt(text)]
    except ValueError:
        return []


def _payload_value(transform: str, data: Any) -> Any:
    """Turn a text/structured artifact payload into cues, SRT text or overlays (None: can't)."""
    if transform == "subtitle_cues":
        if isinstance(data, dict):
            data = data.get("cues", data.get("srt"))
        if isinstance(data, str):
            data = srt_to_cues(data)
        return data if isinstance(data, list) and data else None
    if transform == "subtitle_srt":
        if isinstance(data, dict):
            data = data.get("srt", data.get("cues"))
        if isinstance(data, list) and data and all(isinstance(c, dict) for c in data):
            try:
                data = cues_to_srt(data)
            except (KeyError, TypeError, ValueError):
                return None
        return data if isinstance(data, str) and data.strip() else None
    if isinstance(data, dict):
        data = data.get("overlays", data.get("items"))
    return data if isinstance(data, list) and data else None


def _bound_value(
    step: PlanStep,
    binding: Binding,
    outputs: dict[str, StepOutput],
    input_media: list[InputMediaRef],
) -> tuple[Any, str | None]:
    """(value, None) or (None, why it is missing)."""
    transform = binding.transform
    if binding.from_input_media:
        kind = binding.kind()
        candidates = [m for m in input_media if kind is None or m.kind == kind]
        what = f"{kind} media reference" if kind else "media reference"
        if binding.sourceArtifactId is not None:
            ref = next((m for m in candidates if m.id == binding.sourceArtifactId), None)
            label = repr(binding.sourceArtifactId)
        else:
            position = binding.sourceArtifactIndex
            ref = candidates[position] if position < len(candidates) else None
            label = str(position)
        if ref is None:
            return None, f"the request has no {what} {label}"
        if transform in INDEX_TRANSFORMS:
            return input_media_value(binding, step.toolName, -ref.index - 1), None
        if transform in URL_TRANSFORMS:
            return ref.url, None
        if transform == "asset_ref":
            return {"asset_id": ref.id, "url": ref.url}, None
        return None, f"a {what} has no {transform.replace('_', ' ')}"

    source = outputs.get(binding.sourceStepId)
    if source is None or source.status != "completed":
        status = source.status if source is not None else "not run"
        return None, f"source step '{binding.sourceStepId}' is {status}"
    artifact = _pick_artifact(binding, source.artifacts)
    if artifact is None:
        kind = binding.kind()
        which = (
            f"artifact '{binding.sourceArtifactId}'"
            if binding.sourceArtifactId is not None
            else f"artifact {binding.sourceArtifactIndex}"
        )
        of = f" of type {kind}" if kind else ""
        return None, f"source step '{binding.sourceStepId}' has no {which}{of}"
    where = f"artifact '{artifact.id}' of step '{binding.sourceStepId}'"
    if transform in URL_TRANSFORMS:
        if not artifact.url:
            return None, f"{where} has no URL"
        return artifact.url, None
    if transform in INDEX_TRANSFORMS:
        if artifact.index is None:
            return None, f"{where} has no media index"
        return artifact.index, None
    if transform == "asset_ref":
        return {"asset_id": artifact.id, "url": artifact.url}, None
    value = _payload_value(transform, artifact.data)
    if value is None:
        return None, f"{where} carries no {transform.replace('_', ' ')}"
    return value, None


def _with_answers(step: PlanStep, value: Any, outputs: dict[str, StepOutput]) -> Any:
    """`value` with each `$answers.<id>` replaced by that step's answer."""
    if isinstance(value, str):

        def answer(match: re.Match[str]) -> str:
            source = match.group(1) or match.group(2)
            found = outputs.get(source)
            if found is None or found.answer is None:
                raise BindingError(step.id, f"step '{source}' has no answer to use")
            return found.answer

        return ANSWER.sub(answer, value)
    if isinstance(value, dict):
        return {key: _with_answers(step, item, outputs) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_answers(step, item, outputs) for item in value]
    return value


def resolve_arguments(
    step: PlanStep,
    outputs: dict[str, StepOutput],
    input_media: list[InputMediaRef] | None = None,
) -> dict[str, Any]:
    """The step's arguments with the answers it names filled in and its bindings applied, in
    `dependsOn` order. A required binding that cannot be satisfied (or a missing answer) raises
    `BindingError`; an optional binding is dropped."""
    arguments = _with_answers(step, copy.deepcopy(step.arguments), outputs)
    for binding in step.dependsOn:
        value, missing = _bound_value(step, binding, outputs, input_media or [])
        if missing is not None:
            if binding.required:
                raise BindingError(step.id, f"cannot bind '{binding.targetArgument}': {missing}")
            continue
        write_argument(arguments, step.toolName, binding.targetArgument, value)
    return arguments
