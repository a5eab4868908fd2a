"""The durable side of a creative workflow: its DBOS workflow and steps.

A workflow record is created in our own tables; its execution is one DBOS workflow whose steps
are: mark running, bring the request media into the asset store, run each wave of plan steps
(independent steps concurrently; a step runs inside the workflow when this process serves its
tool's queue, else as a job on that queue), record each wave's results, finish. DBOS memoises
every finished step, so after a crash the restarted process resumes from the last one and
repeats no finished tool call; events carry dedupe keys, so a repeated step cannot write its
events twice. Cancellation is a compare-and-set on the record plus a watchdog that kills the
tool running for it. Each step's run policy (`onError`, `maxAttempts`, `after`) decides what
its failure does to the rest; a step that asks the user pauses the workflow (`workflow_input`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dbos import DBOS

from sogni_intelligence.media.fetch import FetchPolicy
from sogni_intelligence.media.store import AssetStore
from sogni_intelligence.observability.metrics import JOB_DURATION
from sogni_intelligence.runtime import cost_approval, durable, workflow_input
from sogni_intelligence.runtime.endings import STOPPED, ends_record_on_error
from sogni_intelligence.runtime.launched import Launched
from sogni_intelligence.runtime.queues import QUEUE_SLOTS
from sogni_intelligence.runtime.step_progress import ProgressWriter, step_progress_payload
from sogni_intelligence.store.records import Announcement, Record, RecordStore
from sogni_intelligence.tools.base import ENVELOPE_KEYS, ToolContext, ToolServices, execute
from sogni_intelligence.tools.catalog import CATALOG
from sogni_intelligence.tools.content_filter import requested
from sogni_intelligence.tools.media_context import KINDS, MediaContext, MediaIds
from sogni_intelligence.tools.media_inputs import MediaInput, ingest, media_location
from sogni_intelligence.tools.plan_bindings import execution_order, held_back, resolve_arguments
from sogni_intelligence.tools.plan_model import (
    BindingError,
    InputMediaRef,
    Plan,
    PlanStep,
    StepOutput,
)
from sogni_intelligence.tools.steps import STEP_CANDIDATES

log = logging.getLogger(__name__)

JOB_POLL_S = 0.01
JOB_CHECK_S = 2.0


@dataclass
class WorkflowDeps:
    """What the durable functions need; set once per process by `WorkflowRuntime.launch`."""

    records: RecordStore
    assets: AssetStore
    fetch_policy: FetchPolicy
    services: ToolServices


DEPS: Launched[WorkflowDeps] = Launched("the workflow runtime")


def now() -> str:
    return datetime.now(UTC).isoformat()


# --------------------------------------------------------------------------------------------
# Durable steps


@DBOS.step()
async def _mark_running(record_id: str) -> dict[str, Any] | None:
    """Start the record; None when it was cancelled first. Otherwise how this workflow runs,
    recorded with the step so that a recovery makes the same choices (see `_how_it_runs`):
    `served`, the media queues this process serves, whose steps then run inside it."""
    deps = DEPS()
    await deps.records.transition(
        record_id,
        "running",
        allowed_from={"queued"},
        event=Announcement("workflow_started", {"status": "running"}, "workflow_started"),
    )
    record = await deps.records.get(record_id)
    if record is None or record.status != "running":
        return None
    return {"served": QUEUE_SLOTS().served(), "waves": "in-workflow"}


@dataclass(frozen=True)
class _HowItRuns:
    """The choices a workflow made at its start, read back from `_mark_running`'s result."""

    #: The media queues whose steps run inside the workflow.
    here: list[str]
    #: Whether a wave's results are written by the workflow itself (an idempotent revision,
    #: repeated on recovery) rather than by a step of their own; each step of its own is a
    #: DBOS commit more per wave.
    waves_in_workflow: bool


def _how_it_runs(started: dict[str, Any] | list[str] | bool) -> _HowItRuns:
    """Workflows started by earlier versions recorded `True` (every step a job) or a list of
    served queues (each wave's results a step); they go on the way they began, so that their
    recorded steps line up."""
    if isinstance(started, dict):
        return _HowItRuns(started["served"], started["waves"] == "in-workflow")
    return _HowItRuns(started if isinstance(started, list) else [], False)


@DBOS.step()
async def _ingest_media(record_id: str) -> list[dict[str, Any]]:
    """Fetch the request's media references into the asset store (http(s) only, guarded)."""
    deps = DEPS()
    record = await deps.records.get(record_id)
    assert record is not None
    references = record.data["plan"].get("mediaReferences", [])
    inputs = [
        MediaInput(
            media_location(r) or "", f"media reference {i}", f"media_references[{i - 1}].url"
        )
        for i, r in enumerate(references, 1)
    ]
    _, ingested = await ingest(record.owner, inputs, deps.assets, deps.fetch_policy)
    return [
        {
            "kind": item.asset.kind,
            "url": item.input.source,
            "index": item.index,
            "id": reference.get("id"),
            "assetId": item.asset.id,
        }
        for reference, item in zip(references, ingested, strict=True)
    ]


async def _media_context(
    owner: str,
    seed: MediaIds,
    input_media: list[dict[str, Any]],
    generated: dict[str, list[str]],
) -> MediaContext:
    """The step's media: what the caller's session already had (`seed`, e.g. a chat's earlier
    rounds, so its indices stay valid), the request media, then this workflow's results."""
    uploads, earlier = seed.get("uploads", {}), seed.get("generated", {})
    requested = {kind: [r["assetId"] for r in input_media if r["kind"] == kind] for kind in KINDS}
    ids = {
        "uploads": {kind: [*uploads.get(kind, []), *requested[kind]] for kind in KINDS},
        "generated": {kind: [*earlier.get(kind, []), *generated.get(kind, [])] for kind in KINDS},
    }
    return await MediaContext.load(DEPS().assets, owner, ids)


@DBOS.step()
async def _run_step(
    record_id: str,
    step_id: str,
    outputs: dict[str, dict[str, Any]],
    input_media: list[dict[str, Any]],
    generated: dict[str, list[str]],
    end_told_by_workflow: bool = False,
    attempt: int = 1,
) -> dict[str, Any]:
    """Run one plan step (its `attempt`-th try). With `end_told_by_workflow`, a completed
    step's `step_completed` event is not written here but returned (`endEvent`), and the
    workflow writes it with the wave's results in one commit."""
    deps = DEPS()
    record = await deps.records.get(record_id)
    assert record is not None
    if record.status == "cancelled":
        return {"status": "skipped", "assets": [], "error": "workflow cancelled"}
    step = Plan.model_validate(record.data["plan"]).step(step_id)
    queue = STEP_CANDIDATES[step.toolName].queue
    async with QUEUE_SLOTS().held(queue):
        # Timed once it holds a slot: the work itself, not the wait for room.
        with JOB_DURATION.labels(queue, step.toolName).time():
            return await _run_started_step(
                record, step, outputs, input_media, generated, end_told_by_workflow, attempt
            )


async def _run_started_step(
    record: Record,
    step: PlanStep,
    outputs: dict[str, dict[str, Any]],
    input_media: list[dict[str, Any]],
    generated: dict[str, list[str]],
    end_told_by_workflow: bool,
    attempt: int,
) -> dict[str, Any]:
    deps = DEPS()
    record_id, step_id = record.id, step.id
    # A retry's events are its own: the first try's dedupe keys would swallow them.
    tried = "" if attempt == 1 else f":{attempt}"
    started = {"stepId": step_id, "toolName": step.toolName}
    await deps.records.append(
        record_id,
        "step_started",
        started if attempt == 1 else {**started, "attempt": attempt},
        dedupe_key=f"{step_id}:started{tried}",
    )
    try:
        arguments = resolve_arguments(
            step,
            {k: StepOutput.model_validate(v) for k, v in outputs.items()},
            [InputMediaRef.model_validate(m) for m in input_media],
        )
    except BindingError as exc:
        return await _step_failed(record_id, step_id, exc.message, attempt=attempt)
    ticks = ProgressWriter(
        lambda tick: deps.records.append(
            record_id,
            "workflow_progress",
            step_progress_payload(step_id, step.toolName, tick),
            # A step repeated after a crash that reaches the same fraction tells it once.
            dedupe_key=f"{step_id}{tried}:progress:{tick.fraction}",
        )
    )
    ctx = ToolContext(
        owner=record.owner,
        media=await _media_context(
            record.owner, record.data.get("mediaContext") or {}, input_media, generated
        ),
        store=deps.assets,
        progress=ticks.relay,
        services=deps.services,
        safe_content_filter=requested(record.data.get("options", {}).get("safeContentFilter")),
    )
    try:
        result = await deps.records.unless_cancelled(
            record_id, execute(CATALOG[step.toolName], arguments, ctx)
        )
    except BaseException:
        await ticks.close(ended=False)
        raise
    await ticks.close(ended=True)
    if result is None:
        return {"status": "skipped", "assets": [], "error": "workflow cancelled"}
    if not result.get("ok"):
        return await _step_failed(
            record_id, step_id, str(result.get("message")), result, attempt=attempt
        )
    made = result.get("output_assets", [])
    assets = [asset["asset_id"] for asset in made]
    summary = {k: result[k] for k in ("model", "backend", "warnings") if k in result}
    # What the tool said besides its assets (an analysis answer, a last-frame URL…).
    output = {k: v for k, v in result.items() if k not in ENVELOPE_KEYS}
    completed = {"stepId": step_id, "assetIds": assets, **summary, "output": output}
    kinds = [asset["type"] for asset in made]
    ended = {"status": "completed", "assets": assets, "kinds": kinds, "result": summary}
    if end_told_by_workflow:
        return {**ended, "endEvent": completed}
    await deps.records.append(
        record_id, "step_completed", completed, dedupe_key=f"{step_id}:completed"
    )
    return ended


async def _step_failed(
    record_id: str,
    step_id: str,
    message: str,
    result: dict[str, Any] | None = None,
    *,
    attempt: int = 1,
) -> dict[str, Any]:
    error = {"message": message, "errorType": (result or {}).get("error_type", "UNKNOWN_ERROR")}
    payload: dict[str, Any] = {"stepId": step_id, "error": error}
    await DEPS().records.append(
        record_id,
        "step_failed",
        payload if attempt == 1 else {**payload, "attempt": attempt},
        dedupe_key=f"{step_id}:failed" if attempt == 1 else f"{step_id}:failed:{attempt}",
    )
    return {"status": "failed", "assets": [], "error": error}


@DBOS.step()
async def _step_not_run(record_id: str, step_id: str, status: str, reason: str) -> dict[str, Any]:
    """End a step the workflow does not run (or gives up on): `skipped` (its `onError` says
    so, it needs a skipped step, or the workflow stopped) or `failed` (it needs a failed one),
    with the reason."""
    error = {"message": reason, "errorType": "UNKNOWN_ERROR"}
    await DEPS().records.append(
        record_id,
        f"step_{status}",
        {"stepId": step_id, "reason": reason, "error": error},
        dedupe_key=f"{step_id}:{status}",
    )
    return {"status": status, "assets": [], "error": error}


def _step_state(result: dict[str, Any]) -> dict[str, Any]:
    """What a step's record keeps of its result: status, error, and a user's answer."""
    state = {"status": result["status"], "error": result.get("error")}
    if "answer" in result:
        state["answer"] = result["answer"]
    return state


@DBOS.step()
async def _record_wave(
    record_id: str, results: dict[str, dict[str, Any]], artifacts: list[dict[str, Any]]
) -> None:
    """`_write_wave` as a step of its own, for workflows that began that way."""
    await _write_wave(record_id, results, artifacts)


async def _write_wave(
    record_id: str, results: dict[str, dict[str, Any]], artifacts: list[dict[str, Any]]
) -> None:
    """Persist the wave's step states and artifacts, and announce the ends of the steps that
    left that to the workflow and the new artifacts. Doing it again changes nothing:
    artifacts are added once, and events have dedupe keys."""

    def change(record: Record) -> tuple[dict[str, Any], list[Announcement]]:
        steps = [
            {
                **s,
                **(_step_state(results[s["id"]]) if s["id"] in results else {}),
            }
            for s in record.data["steps"]
        ]
        known = {a["id"] for a in record.data.get("artifacts", [])}
        new = [a for a in artifacts if a["id"] not in known]
        done = sum(1 for s in steps if s.get("status") in ("completed", "failed", "skipped"))
        announcements = [
            Announcement("step_completed", result["endEvent"], f"{step_id}:completed")
            for step_id, result in results.items()
            if "endEvent" in result
        ]
        announcements += [
            Announcement("artifact_created", {"artifact": a}, f"{a['id']}:created") for a in new
        ]
        announcements.append(
            Announcement(
                "workflow_progress",
                {"completedSteps": done, "totalSteps": len(steps)},
                f"progress:{done}",
            )
        )
        return {"steps": steps, "artifacts": [*record.data.get("artifacts", []), *new]}, (
            announcements
        )

    await DEPS().records.revise(record_id, change)


@DBOS.step()
async def _finish(record_id: str, statuses: dict[str, str], stopped_by: str | None = None) -> str:
    """End the record: `failed` when a step stopped the workflow (`stopped_by`), else by how
    its steps ended (a step skipped by its own `onError` counts as neither success nor
    failure)."""
    records = DEPS().records
    ran = [s for s in statuses.values() if s != "skipped"]
    completed = sum(1 for s in ran if s == "completed")
    if stopped_by is None and completed and completed == len(ran):
        status, event = "completed", "workflow_completed"
    elif stopped_by is None and completed:
        status, event = "partial_failure", "workflow_completed"
    else:
        status, event = "failed", "workflow_failed"
    patch: dict[str, Any] = {"completedAt": now()}
    payload: dict[str, Any] = {"status": status}
    if status != "completed":
        record = await records.get(record_id)
        steps = record.data["steps"] if record else []
        if stopped_by is not None:
            statuses = {stopped_by: statuses[stopped_by]}
        reason = _steps_failure_reason(steps, statuses)
        patch.update(failureReason=reason, error={"message": reason})
        payload["reason"] = reason
    moved = await records.transition(
        record_id,
        status,
        allowed_from={"running"},
        patch=patch,
        event=Announcement(event, payload, "terminal"),
    )
    if moved is None:  # cancelled meanwhile: that status stands
        record = await records.get(record_id)
        return record.status if record else "failed"
    return status


def _steps_failure_reason(steps: list[dict[str, Any]], statuses: dict[str, str]) -> str:
    """Which steps did not complete, and why (their own error messages)."""
    by_id = {s["id"]: s for s in steps}
    parts = []
    for step_id, status in statuses.items():
        if status == "completed":
            continue
        step = by_id.get(step_id, {})
        error = step.get("error") or {}
        why = error.get("message") if isinstance(error, dict) else error
        kind = error.get("errorType") if isinstance(error, dict) else None
        detail = f"{kind}: {why}" if kind and kind != "UNKNOWN_ERROR" else why
        parts.append(f"{step_id} ({step.get('toolName', '?')}) {status}: {detail or 'no reason'}")
    return "steps did not complete: " + "; ".join(parts)


# --------------------------------------------------------------------------------------------
# The durable workflows


async def _run_step_to_an_end(
    record_id: str,
    step_id: str,
    outputs: dict[str, dict[str, Any]],
    input_media: list[dict[str, Any]],
    generated: dict[str, list[str]],
    end_told_by_workflow: bool = False,
    attempt: int = 1,
) -> dict[str, Any]:
    """A plan step that always ends with an end event (see `_steps_settled`), even when the
    step itself broke: written here, or by the workflow when `end_told_by_workflow`."""
    try:
        return await _run_step(
            record_id, step_id, outputs, input_media, generated, end_told_by_workflow, attempt
        )
    except Exception as exc:
        log.exception("step %s of %s broke", step_id, record_id)
        return await _step_failed(record_id, step_id, f"the step broke: {exc}", attempt=attempt)


@DBOS.workflow()
async def tool_job(
    record_id: str,
    step_id: str,
    outputs: dict[str, dict[str, Any]],
    input_media: list[dict[str, Any]],
    generated: dict[str, list[str]],
    attempt: int = 1,
) -> dict[str, Any]:
    """One plan step as a queued job, so it runs in a worker serving its queue."""
    return await _run_step_to_an_end(
        record_id, step_id, outputs, input_media, generated, attempt=attempt
    )


async def _run_wave(
    record_id: str,
    plan: Plan,
    wave: list[str],
    how: _HowItRuns,
    outputs: dict[str, dict[str, Any]],
    input_media: list[dict[str, Any]],
    generated: dict[str, list[str]],
    attempt: int = 1,
) -> list[dict[str, Any]]:
    """Run a wave's steps at once and return their results in wave order. A step whose queue
    this process serves (`how.here`) runs as a step of this workflow, bounded by the queue's
    slots; any other is a job on its queue for a worker that serves it."""
    args = (outputs, input_media, generated)
    queue = {sid: STEP_CANDIDATES[plan.step(sid).toolName].queue for sid in wave}
    # A wave of one step has nothing to wait for after it: its end event can go out with the
    # wave's results, one commit instead of two.
    tell_end = how.waves_in_workflow and len(wave) == 1
    inline = {
        sid: _run_step_to_an_end(record_id, sid, *args, tell_end, attempt)
        for sid in wave
        if queue[sid] in how.here
    }
    remote = [sid for sid in wave if sid not in inline]
    if remote:  # a queue this process serves may be among theirs (a workflow begun elsewhere)
        durable.poll_queues()
    jobs = [
        await DBOS.enqueue_workflow_async(queue[sid], tool_job, record_id, sid, *args, attempt)
        for sid in remote
    ]

    async def settle_jobs() -> list[dict[str, Any]]:
        if not jobs:
            return []
        await _steps_settled(record_id, remote, [job.get_workflow_id() for job in jobs])
        return await asyncio.gather(
            *(job.get_result(polling_interval_sec=JOB_POLL_S) for job in jobs)
        )

    ran_here, ran_remote = await asyncio.gather(asyncio.gather(*inline.values()), settle_jobs())
    by_step = dict(zip(inline, ran_here, strict=True)) | dict(zip(remote, ran_remote, strict=True))
    return [by_step[sid] for sid in wave]


async def _steps_settled(record_id: str, step_ids: list[str], job_ids: list[str]) -> None:
    """Wait for the end events of the wave's steps (or the workflow's cancellation). Our event
    log reaches this process at once (in memory when the job ran here), so the jobs' results
    are then read with a short poll instead of waiting out DBOS's result polling. A job that
    stopped without its event (its failure could not even be recorded) is noticed by a slow
    check of the jobs' DBOS status; reading its result then raises, which ends the workflow."""
    pending = set(step_ids)
    async for event in DEPS().records.follow(record_id, idle_s=JOB_CHECK_S):
        if event is None:
            if await _jobs_stopped(job_ids):
                return
            continue
        if event.type in ("step_completed", "step_failed"):
            pending.discard(event.payload.get("stepId"))
        if not pending or event.type == "workflow_cancelled":
            return


async def _jobs_stopped(job_ids: list[str]) -> bool:
    """Whether every job has stopped, read outside the workflow's context: this look is not a
    durable operation, so it never shifts the recorded order of the workflow's steps."""

    async def read() -> bool:
        found = await DBOS.list_workflows_async(
            workflow_ids=job_ids, load_input=False, load_output=False
        )
        return len(found) == len(job_ids) and all(s.status in STOPPED for s in found)

    return await asyncio.create_task(read(), context=contextvars.Context())


async def _asset_kinds(results: list[dict[str, Any]]) -> dict[str, str]:
    """The media type of each asset the wave's steps made. A step reports them with its
    result; results recorded by earlier versions name only the ids, which are looked up."""
    kinds: dict[str, str] = {}
    unknown = []
    for result in results:
        if "kinds" in result:
            kinds.update(zip(result["assets"], result["kinds"], strict=True))
        else:
            unknown += result["assets"]
    if unknown:
        found = await DEPS().assets.get_many(unknown)
        kinds.update({asset_id: asset.kind for asset_id, asset in found.items()})
    return kinds


@DBOS.workflow()
@ends_record_on_error
async def creative_workflow(record_id: str) -> str:
    started = await _mark_running(record_id)
    if started is None or started is False:
        return "cancelled"
    how = _how_it_runs(started)
    record = await DEPS().records.get(record_id)
    assert record is not None
    if record.data.get("needsCostApproval"):
        if not await cost_approval.ask_plan_approval(record_id):
            return "cancelled"
        decision = await DBOS.recv_async(
            cost_approval.PLAN_APPROVAL_TOPIC, timeout_seconds=cost_approval.APPROVAL_WAIT_S
        )
        if not await cost_approval.plan_approval_resolved(record_id, decision or "timeout"):
            return "cancelled"
    input_media = await _ingest_media(record_id)
    plan = Plan.model_validate(record.data["plan"])  # the plan never changes after the start
    outputs: dict[str, dict[str, Any]] = {}
    generated: dict[str, list[str]] = {"image": [], "video": [], "audio": []}
    statuses: dict[str, str] = {}
    stopped_by: str | None = None  # the step whose failure stopped the workflow
    for wave in execution_order(plan):
        results: dict[str, dict[str, Any]] = {}
        runnable = []
        for step_id in wave:
            step = plan.step(step_id)
            held = held_back(step, statuses, stopped_by)
            if held is not None:
                results[step_id] = await _step_not_run(record_id, step_id, *held)
            elif step.asks_user:
                answered = await workflow_input.wait_for_answer(record_id, step)
                if answered is None:
                    return "ended while waiting for the user"
                results[step_id] = answered
            else:
                runnable.append(step_id)
        attempt = 1
        while runnable:
            ran = await _run_wave(
                record_id, plan, runnable, how, outputs, input_media, generated, attempt
            )
            results.update(zip(runnable, ran, strict=True))
            attempt += 1
            runnable = [
                sid
                for sid in runnable
                if results[sid]["status"] == "failed"
                and attempt <= (plan.step(sid).maxAttempts or 1)
            ]
        for step_id in wave:
            policy = plan.step(step_id).onError
            if results[step_id]["status"] != "failed" or step_id in statuses:
                continue
            if policy == "skip":
                why = results[step_id]["error"]["message"]
                results[step_id] = await _step_not_run(
                    record_id, step_id, "skipped", f"failed and skipped (onError skip): {why}"
                )
            elif policy == "stop" and stopped_by is None:
                stopped_by = step_id
        artifacts = []
        ordered = [results[sid] for sid in wave]
        kinds = await _asset_kinds(ordered)
        # Indices are given in plan order once the wave is done, so they do not depend on
        # which parallel step happened to finish first.
        for step_id, result in zip(wave, ordered, strict=True):
            statuses[step_id] = result["status"]
            refs = []
            for asset_id in result["assets"]:
                kind = kinds.get(asset_id)
                if kind is None:
                    continue
                generated[kind].append(asset_id)
                ref = {"id": asset_id, "kind": kind, "index": len(generated[kind]) - 1}
                refs.append(ref)
                artifacts.append({**ref, "stepId": step_id})
            outputs[step_id] = {"status": result["status"], "artifacts": refs}
            if "answer" in result:
                outputs[step_id]["answer"] = result["answer"]
        write_wave = _write_wave if how.waves_in_workflow else _record_wave
        await write_wave(record_id, results, artifacts)
    return await _finish(record_id, statuses, stopped_by)
