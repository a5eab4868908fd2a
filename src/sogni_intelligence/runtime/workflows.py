"""Creative workflows run durably on DBOS.

A workflow record is created in our own tables; its execution is one DBOS workflow whose steps
are: mark running, bring the request media into the asset store, run each wave of plan steps
(independent steps concurrently), record each wave's results, finish. DBOS memoises every
finished step, so after a crash the restarted process resumes from the last one and repeats
no finished tool call; events carry dedupe keys, so a repeated step cannot write its events
twice. Cancellation is a compare-and-set on the record plus a watchdog that kills the tool
running for it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dbos import DBOS, SetWorkflowID

from sogni_intelligence.errors import ServiceError
from sogni_intelligence.media.fetch import FetchPolicy, fetch_into_store, refuse_early
from sogni_intelligence.media.store import AssetRecord, AssetStore
from sogni_intelligence.runtime import cost_approval
from sogni_intelligence.runtime.endings import STOPPED, ends_record_on_error
from sogni_intelligence.runtime.launched import RECORDS, Launched
from sogni_intelligence.store.records import Announcement, Event, Record, RecordStore
from sogni_intelligence.tools.base import ENVELOPE_KEYS, ToolContext, execute
from sogni_intelligence.tools.catalog import CATALOG
from sogni_intelligence.tools.media_context import KINDS, MediaContext, MediaIds
from sogni_intelligence.tools.plans import (
    BindingError,
    InputMediaRef,
    Plan,
    StepOutput,
    execution_order,
    media_location,
    normalise_plan,
    resolve_arguments,
    step_costs,
)
from sogni_intelligence.tools.steps import STEP_CANDIDATES

log = logging.getLogger(__name__)

BACKBONE = {
    "schemaVersion": "2026-04-27.1",
    "modelKnowledgeVersion": "2026-04-27.2",
    "routingPolicyVersion": "2026-04-27.1",
}
JOB_POLL_S = 0.01
JOB_CHECK_S = 2.0
START_ENDPOINT = "workflows.start"
RESEED_ENDPOINT = "workflows.reseed"


@dataclass
class WorkflowDeps:
    """What the durable functions need; set once per process by `WorkflowRuntime.launch`."""

    records: RecordStore
    assets: AssetStore
    fetch_policy: FetchPolicy
    services: dict[str, Any]


DEPS: Launched[WorkflowDeps] = Launched("the workflow runtime")


def _now() -> str:
    return datetime.now(UTC).isoformat()


# --------------------------------------------------------------------------------------------
# Durable steps


@DBOS.step()
async def _mark_running(record_id: str) -> bool:
    deps = DEPS()
    await deps.records.transition(
        record_id,
        "running",
        allowed_from={"queued"},
        event=Announcement("workflow_started", {"status": "running"}, "workflow_started"),
    )
    record = await deps.records.get(record_id)
    return record is not None and record.status == "running"


@DBOS.step()
async def _ingest_media(record_id: str) -> list[dict[str, Any]]:
    """Fetch the request's media references into the asset store (http(s) only, guarded)."""
    deps = DEPS()
    record = await deps.records.get(record_id)
    assert record is not None
    counts: dict[str, int] = {}
    refs = []
    for i, reference in enumerate(record.data["plan"].get("mediaReferences", []), 1):
        url = reference.get("url") or reference.get("value")
        asset = await fetch_into_store(
            url,
            policy=deps.fetch_policy,
            store=deps.assets,
            owner=record.owner,
            label=f"media reference {i}",
        )
        kind = asset.kind
        counts[kind] = counts.get(kind, 0) + 1
        refs.append(
            {
                "kind": kind,
                "url": url,
                "index": -counts[kind],
                "id": reference.get("id"),
                "assetId": asset.id,
            }
        )
    return refs


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
) -> dict[str, Any]:
    deps = DEPS()
    record = await deps.records.get(record_id)
    assert record is not None
    if record.status == "cancelled":
        return {"status": "skipped", "assets": [], "error": "workflow cancelled"}
    plan = Plan.model_validate(record.data["plan"])
    step = plan.step(step_id)
    await deps.records.append(
        record_id,
        "step_started",
        {"stepId": step_id, "toolName": step.toolName},
        dedupe_key=f"{step_id}:started",
    )
    try:
        arguments = resolve_arguments(
            step,
            {k: StepOutput.model_validate(v) for k, v in outputs.items()},
            [InputMediaRef.model_validate(m) for m in input_media],
        )
    except BindingError as exc:
        return await _step_failed(record_id, step_id, exc.message)
    ctx = ToolContext(
        owner=record.owner,
        media=await _media_context(
            record.owner, record.data.get("mediaContext") or {}, input_media, generated
        ),
        store=deps.assets,
        services=deps.services,
    )
    result = await deps.records.unless_cancelled(
        record_id, execute(CATALOG[step.toolName], arguments, ctx)
    )
    if result is None:
        return {"status": "skipped", "assets": [], "error": "workflow cancelled"}
    if not result.get("ok"):
        return await _step_failed(record_id, step_id, str(result.get("message")), result)
    assets = [asset["asset_id"] for asset in result.get("output_assets", [])]
    summary = {k: result[k] for k in ("model", "backend", "warnings") if k in result}
    # What the tool said besides its assets (an analysis answer, a last-frame URL…).
    output = {k: v for k, v in result.items() if k not in ENVELOPE_KEYS}
    await deps.records.append(
        record_id,
        "step_completed",
        {"stepId": step_id, "assetIds": assets, **summary, "output": output},
        dedupe_key=f"{step_id}:completed",
    )
    return {"status": "completed", "assets": assets, "result": summary}


async def _step_failed(
    record_id: str, step_id: str, message: str, result: dict[str, Any] | None = None
) -> dict[str, Any]:
    error = {"message": message, "errorType": (result or {}).get("error_type", "UNKNOWN_ERROR")}
    await DEPS().records.append(
        record_id,
        "step_failed",
        {"stepId": step_id, "error": error},
        dedupe_key=f"{step_id}:failed",
    )
    return {"status": "failed", "assets": [], "error": error}


@DBOS.step()
async def _record_wave(
    record_id: str, results: dict[str, dict[str, Any]], artifacts: list[dict[str, Any]]
) -> None:
    """Persist the wave's step states and artifacts, and announce the new artifacts."""
    records = DEPS().records
    record = await records.get(record_id)
    assert record is not None
    steps = [
        {
            **s,
            **(
                {"status": results[s["id"]]["status"], "error": results[s["id"]].get("error")}
                if s["id"] in results
                else {}
            ),
        }
        for s in record.data["steps"]
    ]
    known = {a["id"] for a in record.data.get("artifacts", [])}
    new = [a for a in artifacts if a["id"] not in known]
    await records.patch(
        record_id, {"steps": steps, "artifacts": [*record.data.get("artifacts", []), *new]}
    )
    for artifact in new:
        await records.append(
            record_id,
            "artifact_created",
            {"artifact": artifact},
            dedupe_key=f"{artifact['id']}:created",
        )
    done = sum(1 for s in steps if s.get("status") in ("completed", "failed", "skipped"))
    await records.append(
        record_id,
        "workflow_progress",
        {"completedSteps": done, "totalSteps": len(steps)},
        dedupe_key=f"progress:{done}",
    )


@DBOS.step()
async def _finish(record_id: str, statuses: dict[str, str]) -> str:
    records = DEPS().records
    completed = sum(1 for s in statuses.values() if s == "completed")
    if completed == len(statuses):
        status, event = "completed", "workflow_completed"
    elif completed:
        status, event = "partial_failure", "workflow_completed"
    else:
        status, event = "failed", "workflow_failed"
    patch: dict[str, Any] = {"completedAt": _now()}
    payload: dict[str, Any] = {"status": status}
    if status != "completed":
        record = await records.get(record_id)
        reason = _steps_failure_reason(record.data["steps"] if record else [], statuses)
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


@DBOS.workflow()
async def tool_job(
    record_id: str,
    step_id: str,
    outputs: dict[str, dict[str, Any]],
    input_media: list[dict[str, Any]],
    generated: dict[str, list[str]],
) -> dict[str, Any]:
    """One plan step as a queued job, so it runs in a worker serving its queue. It always
    ends with an event of the step (see `_steps_settled`), even when the step itself broke."""
    try:
        return await _run_step(record_id, step_id, outputs, input_media, generated)
    except Exception as exc:
        log.exception("step %s of %s broke", step_id, record_id)
        return await _step_failed(record_id, step_id, f"the step broke: {exc}")


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


@DBOS.workflow()
@ends_record_on_error
async def creative_workflow(record_id: str) -> str:
    if not await _mark_running(record_id):
        return "cancelled"
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
    for wave in execution_order(plan):
        # Each step is a job on its media queue, taken by whichever worker serves that queue.
        jobs = [
            await DBOS.enqueue_workflow_async(
                STEP_CANDIDATES[plan.step(sid).toolName].queue,
                tool_job,
                record_id,
                sid,
                outputs,
                input_media,
                generated,
            )
            for sid in wave
        ]
        await _steps_settled(record_id, wave, [job.get_workflow_id() for job in jobs])
        results = await asyncio.gather(
            *(job.get_result(polling_interval_sec=JOB_POLL_S) for job in jobs)
        )
        artifacts = []
        # Indices are given in plan order once the wave is done, so they do not depend on
        # which parallel step happened to finish first.
        for step_id, result in zip(wave, results, strict=True):
            statuses[step_id] = result["status"]
            refs = []
            for asset_id in result["assets"]:
                asset = await DEPS().assets.get(asset_id)
                if asset is None:
                    continue
                generated[asset.kind].append(asset.id)
                ref = {"id": asset.id, "kind": asset.kind, "index": len(generated[asset.kind]) - 1}
                refs.append(ref)
                artifacts.append({**ref, "stepId": step_id})
            outputs[step_id] = {"status": result["status"], "artifacts": refs}
        await _record_wave(record_id, dict(zip(wave, results, strict=True)), artifacts)
    return await _finish(record_id, statuses)


# --------------------------------------------------------------------------------------------
# The facade the API uses


class WorkflowRuntime:
    def __init__(self, deps: WorkflowDeps, approval_threshold: float = 25.0) -> None:
        self.deps = deps
        self.approval_threshold = approval_threshold

    @property
    def records(self) -> RecordStore:
        return self.deps.records

    def launch(self) -> None:
        DEPS.bind(self.deps)
        RECORDS.bind(self.deps.records)

    async def start(
        self,
        owner: str,
        raw_input: dict[str, Any],
        media_references: list[dict[str, Any]] | None,
        *,
        options: dict[str, Any] | None = None,
        media_context: dict[str, dict[str, list[str]]] | None = None,
        idempotency: tuple[str, Any] | None = None,
        max_units: float | None = None,
        confirm_cost: bool = False,
        endpoint: str = START_ENDPOINT,
    ) -> tuple[Record, bool]:
        plan = normalise_plan(raw_input, media_references or [])
        for i, reference in enumerate(plan.mediaReferences):
            refuse_early(
                media_location(reference), self.deps.fetch_policy, f"media_references[{i}].url"
            )
        costs = step_costs(plan)
        total = round(sum(costs.values()), 2)
        if max_units is not None and total > max_units:
            raise ServiceError(
                f"the plan is estimated at {total} capacity units, above the ceiling of "
                f"{max_units} (max_estimated_capacity_units)",
                400,
                "invalid_request_error",
                "cost_limit_exceeded",
                "max_estimated_capacity_units",
            )
        data = {
            "title": plan.title,
            "input": {
                "title": plan.title,
                "mediaReferences": plan.mediaReferences,
                "steps": [s.model_dump(exclude_none=True) for s in plan.steps],
            },
            "plan": plan.model_dump(),
            "steps": [
                {
                    "id": s.id,
                    "sequence": s.sequence,
                    "toolName": s.toolName,
                    "arguments": s.arguments,
                    "dependsOn": [b.model_dump(exclude_none=True) for b in s.dependsOn],
                    "estimatedCapacityUnits": costs[s.id],
                    "status": "pending",
                }
                for s in plan.steps
            ],
            "artifacts": [],
            "estimatedCapacityUnits": total,
            "options": options or {},
            "mediaContext": media_context or {},
            "recovery": {"resumeCount": 0},
            "needsCostApproval": not confirm_cost and total > self.approval_threshold,
        }
        key = None if idempotency is None else (endpoint, idempotency[0], idempotency[1])
        record, replayed = await self.deps.records.create("workflow", owner, data, idempotency=key)
        if not replayed:
            await self._launch_workflow(record.id)
        return record, replayed

    async def _launch_workflow(self, record_id: str) -> None:
        async def launch() -> None:
            with SetWorkflowID(record_id):
                await DBOS.start_workflow_async(creative_workflow, record_id)

        # Always a workflow of its own, also when a chat run's tool step asks for it (DBOS
        # starts no workflow from inside a step): an empty context hides the caller's.
        await asyncio.create_task(launch(), context=contextvars.Context())

    async def cancel(self, record: Record, reason: str | None = None) -> tuple[Record, bool]:
        moved = await self.deps.records.transition(
            record.id,
            "cancelled",
            allowed_from={"queued", "running", "waiting_for_user"},
            patch={"cancellationReason": reason, "completedAt": _now()},
            event=Announcement(
                "workflow_cancelled", {"status": "cancelled", "reason": reason}, "terminal"
            ),
        )
        if moved is None:
            return record, False
        try:
            await DBOS.cancel_workflow_async(record.id)
        except Exception:  # the DBOS workflow may already be gone; the record is what counts
            log.debug("DBOS cancel of %s failed", record.id, exc_info=True)
        return moved, True

    async def cancel_all(self, workflow_ids: list[str], reason: str) -> None:
        """Cancel each of these workflows that exists (a chat run's children)."""
        for workflow_id in workflow_ids:
            child = await self.deps.records.get(workflow_id)
            if child is not None:
                await self.cancel(child, reason)

    async def confirm_cost(self, record: Record, decision: str = "confirm") -> tuple[Record, bool]:
        """Answer a cost approval: `confirm` goes on, `cancel` cancels. False when the record
        was not waiting for one (a retry is then a no-op)."""
        if record.status != "waiting_for_user" or not record.data.get("awaitingCostApproval"):
            return record, False
        if decision == "cancel":
            cancelled, _ = await self.cancel(record, "cost not approved")
            return cancelled, True
        current = await cost_approval.deliver_decision(
            self.deps.records, record, "confirm", cost_approval.PLAN_APPROVAL_TOPIC
        )
        return current, True

    async def resume(self, record: Record) -> tuple[Record, bool]:
        """Release a cost wait, or restart an interrupted run from its persisted steps."""
        if record.status == "waiting_for_user":
            return await self.confirm_cost(record)
        if record.status not in ("queued", "running"):
            return record, False
        status = await DBOS.get_workflow_status_async(record.id)
        if status is not None and status.status in ("PENDING", "ENQUEUED"):
            return record, False  # it is running: nothing to resume
        recovery = dict(record.data.get("recovery") or {})
        recovery["resumeCount"] = int(recovery.get("resumeCount", 0)) + 1
        record = await self.deps.records.patch(record.id, {"recovery": recovery}) or record
        if status is None:
            await self._launch_workflow(record.id)
        else:
            await DBOS.resume_workflow_async(record.id)
        return record, True

    async def reseed(
        self,
        owner: str,
        record: Record,
        seed_overrides: dict[str, int] | None,
        idempotency: tuple[str, Any] | None = None,
    ) -> tuple[Record, list[dict[str, Any]], bool]:
        """A new run of a finished workflow with fresh seeds (or the given ones per step)."""
        if record.status not in ("completed", "partial_failure"):
            raise ServiceError(
                f"only a completed or partial_failure workflow can be reseeded (this one is "
                f"{record.status})",
                409,
                "conflict_error",
                "workflow_not_finished",
            )
        overrides = seed_overrides or {}
        steps, seeds = [], []
        for step in record.data["input"]["steps"]:
            arguments = dict(step.get("arguments") or {})
            if "seed" in CATALOG[step["toolName"]].args.model_fields:
                seed = int(overrides.get(step["id"], secrets.randbelow(2**31)))
                arguments["seed"] = seed
                seeds.append({"stepId": step["id"], "newSeed": seed})
            steps.append({**step, "arguments": arguments})
        new, replayed = await self.start(
            owner,
            {"title": record.data.get("title"), "steps": steps},
            record.data["input"].get("mediaReferences"),
            options={**record.data.get("options", {}), "clonedFrom": record.id},
            idempotency=idempotency,
            confirm_cost=True,
            endpoint=RESEED_ENDPOINT,
        )
        if replayed:
            seeds = [
                {"stepId": s["id"], "newSeed": s["arguments"].get("seed")}
                for s in new.data["input"]["steps"]
                if "seed" in s["arguments"]
            ]
        return new, seeds, replayed

    async def resume_pending(self) -> int:
        """Start the DBOS workflow of queued records that never got one (a crash between the
        record and the launch). DBOS itself recovers the ones that did start."""
        started = 0
        for record in await self.deps.records.unlaunched("workflow"):
            status = await DBOS.get_workflow_status_async(record.id)
            if status is None:
                await self._launch_workflow(record.id)
                started += 1
        return started

    async def public(self, record: Record) -> dict[str, Any]:
        """The WorkflowRecord of the spec; artifact URLs are signed afresh on every read."""
        data = record.data
        artifacts = []
        for artifact in data.get("artifacts", []):
            asset = await self.deps.assets.get(artifact["id"])
            if asset is not None:
                artifacts.append(_artifact(artifact, asset, self.deps.assets))
        return {
            "workflowId": record.id,
            "status": record.status,
            "title": data.get("title"),
            "input": data.get("input"),
            "steps": data.get("steps", []),
            "artifacts": artifacts,
            "estimatedCapacityUnits": data.get("estimatedCapacityUnits"),
            "error": data.get("error"),
            "failureReason": data.get("failureReason"),
            "cancellationReason": data.get("cancellationReason"),
            "waitingReason": data.get("waitingReason"),
            "awaitingCostApproval": bool(data.get("awaitingCostApproval")),
            "billingPreview": data.get("billingPreview"),
            "recovery": data.get("recovery"),
            "backbone": BACKBONE,
            "timestamps": {
                "createdAt": record.created_at.isoformat(),
                "updatedAt": record.updated_at.isoformat(),
                "completedAt": data.get("completedAt"),
            },
        }

    def public_event(self, event: Event, status: str) -> dict[str, Any]:
        return {
            "id": f"{event.record_id}:{event.sequence}",
            "workflowId": event.record_id,
            "sequence": event.sequence,
            "timestamp": event.at.isoformat(),
            "type": event.type,
            "status": status,
            "data": event.payload,
        }


def _artifact(ref: dict[str, Any], asset: AssetRecord, store: AssetStore) -> dict[str, Any]:
    out = {
        "id": asset.id,
        "kind": asset.kind,
        "url": store.url(asset),
        "mimeType": asset.mime,
        "sizeBytes": asset.size_bytes,
        "stepId": ref.get("stepId"),
        "index": ref.get("index"),
    }
    for key, value in (
        ("width", asset.width),
        ("height", asset.height),
        ("duration", asset.duration_s),
    ):
        if value is not None:
            out[key] = value
    return out
