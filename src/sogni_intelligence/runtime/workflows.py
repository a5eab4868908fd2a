"""Creative workflows: the facade the API starts, cancels, confirms, resumes, reseeds and reads
workflows through. Their durable execution is in `runtime.workflow_steps`.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import secrets
from typing import Any

from dbos import DBOS, SetWorkflowID

from sogni_intelligence.errors import ServiceError
from sogni_intelligence.media.fetch import refuse_early
from sogni_intelligence.media.store import AssetRecord, AssetStore
from sogni_intelligence.runtime import cost_approval, workflow_input
from sogni_intelligence.runtime.launched import RECORDS
from sogni_intelligence.runtime.workflow_steps import DEPS, WorkflowDeps, creative_workflow, now
from sogni_intelligence.store.keys import fingerprint_of
from sogni_intelligence.store.records import TERMINAL, Announcement, Event, Record, RecordStore
from sogni_intelligence.store.usage import UsageStore
from sogni_intelligence.tools.catalog import CATALOG
from sogni_intelligence.tools.media_inputs import media_location
from sogni_intelligence.tools.plans import normalise_plan, step_costs

log = logging.getLogger(__name__)

BACKBONE = {
    "schemaVersion": "2026-04-27.1",
    "modelKnowledgeVersion": "2026-04-27.2",
    "routingPolicyVersion": "2026-04-27.1",
}
START_ENDPOINT = "workflows.start"
RESEED_ENDPOINT = "workflows.reseed"
#: The latest events a record carries; `GET …/events` has them all.
RECORD_EVENTS = 200
#: Whether a workflow filters unsafe content when its start did not say.
SAFE_CONTENT_FILTER_DEFAULT = True


# --------------------------------------------------------------------------------------------
# The facade the API uses


class WorkflowRuntime:
    def __init__(
        self,
        deps: WorkflowDeps,
        approval_threshold: float = 25.0,
        usage: UsageStore | None = None,
    ) -> None:
        self.deps = deps
        self.approval_threshold = approval_threshold
        #: Holds each owner to its daily capacity-unit budget; None holds no one.
        self.usage = usage

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
        preview = cost_approval.plan_preview(data)
        data.update(billingPreview=preview, billingPreviews=[preview])
        key = None if idempotency is None else (endpoint, idempotency[0], idempotency[1])
        # Every media job is a workflow started here (a chat's tool calls too), so this is
        # where a day's capacity units are counted: taken before the record exists, given
        # back if no new workflow comes of it.
        reserved = self.usage is not None and await self.usage.reserve_units(owner, total)
        try:
            record, replayed = await self.deps.records.create(
                "workflow",
                owner,
                data,
                idempotency=key,
                first_event=_billing_event(preview, 0),
            )
        except BaseException:
            if reserved:
                await self._refund(owner, total)
            raise
        if reserved and replayed:
            await self._refund(owner, total)
        if not replayed:
            await self._launch_workflow(record.id)
        return record, replayed

    async def _refund(self, owner: str, units: float) -> None:
        assert self.usage is not None
        await self.usage.refund_units(owner, units)

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
            patch={"cancellationReason": reason, "completedAt": now()},
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

    async def answer(self, record: Record, answer: str, step_id: str | None = None) -> Record:
        """Give a workflow waiting for the user's input its answer (a 409 if it waits for
        none); the record once the workflow has gone on."""
        return await workflow_input.deliver_answer(self.deps.records, record, answer, step_id)

    async def resume(
        self, record: Record, billing: dict[str, str] | None = None
    ) -> tuple[Record, bool]:
        """Release a cost wait, or restart an interrupted run from its persisted steps.
        `billing` changes how an unfinished workflow is billed from here on."""
        if billing and record.status not in TERMINAL:
            record = await self._rebill(record, billing)
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

    async def _rebill(self, record: Record, billing: dict[str, str]) -> Record:
        """Keep the new billing fields, and a new billing preview when they change it."""

        def change(current: Record) -> tuple[dict[str, Any], list[Announcement]]:
            options = {**current.data.get("options", {}), **billing}
            preview = cost_approval.plan_preview({**current.data, "options": options})
            if preview == current.data.get("billingPreview"):
                return {"options": options}, []
            previews = [*current.data.get("billingPreviews", []), preview]
            patch = {"options": options, "billingPreview": preview, "billingPreviews": previews}
            return patch, [_billing_event(preview, len(previews) - 1)]

        return await self.deps.records.revise(record.id, change) or record

    async def reseed(
        self,
        owner: str,
        record: Record,
        seed_overrides: dict[str, int] | None,
        idempotency: tuple[str, Any] | None = None,
        billing: dict[str, str] | None = None,
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
            options={**record.data.get("options", {}), **(billing or {}), "clonedFrom": record.id},
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
        """The WorkflowRecord of the spec; artifact URLs are signed afresh on every read. It
        carries its latest `RECORD_EVENTS` events."""
        data = record.data
        options = data.get("options") or {}
        artifacts = []
        for artifact in data.get("artifacts", []):
            asset = await self.deps.assets.get(artifact["id"])
            if asset is not None:
                artifacts.append(_artifact(artifact, asset, self.deps.assets))
        safe = options.get("safeContentFilter")
        return {
            "workflowId": record.id,
            "status": record.status,
            "title": data.get("title"),
            "safeContentFilter": SAFE_CONTENT_FILTER_DEFAULT if safe is None else safe,
            "scope": {
                "apiKeyFingerprint": fingerprint_of(record.owner),
                "tokenType": options.get("tokenType"),
                "billingMode": options.get("billingMode"),
                "appSource": options.get("appSource"),
            },
            "input": data.get("input"),
            "plan": data.get("plan"),
            "steps": data.get("steps", []),
            "events": await self._latest_public_events(record.id),
            "artifacts": artifacts,
            "estimatedCapacityUnits": data.get("estimatedCapacityUnits"),
            "error": data.get("error"),
            "failureReason": data.get("failureReason"),
            "cancellationReason": data.get("cancellationReason"),
            "waitingReason": data.get("waitingReason"),
            "awaitingInput": data.get("awaitingInput"),
            "awaitingCostApproval": bool(data.get("awaitingCostApproval")),
            "billingPreview": data.get("billingPreview"),
            "billingPreviews": data.get("billingPreviews", []),
            "recovery": data.get("recovery"),
            "backbone": BACKBONE,
            "timestamps": {
                "createdAt": record.created_at.isoformat(),
                "updatedAt": record.updated_at.isoformat(),
                "completedAt": data.get("completedAt"),
            },
        }

    async def public_events(self, record_id: str, after: int = -1) -> list[dict[str, Any]]:
        """The WorkflowEvents after the cursor, each with the workflow's status after it."""
        return await self._with_statuses(
            record_id, await self.deps.records.all_events(record_id, after)
        )

    async def _latest_public_events(self, record_id: str) -> list[dict[str, Any]]:
        latest = await self.deps.records.latest_events(record_id, RECORD_EVENTS)
        return await self._with_statuses(record_id, latest[::-1])

    async def _with_statuses(self, record_id: str, events: list[Event]) -> list[dict[str, Any]]:
        """Consecutive events (oldest first) as WorkflowEvents; the status they start from is
        read from the events before them that set one, not from the whole history."""
        if not events:
            return []
        start = await status_before(self.deps.records, record_id, events[0].sequence)
        statuses = statuses_after(events, start)
        return [self.public_event(e, status) for e, status in zip(events, statuses, strict=True)]

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


_STATUS_OF_TYPE = {
    "workflow_started": "running",
    "workflow_waiting_for_user": "waiting_for_user",
    "workflow_user_input_required": "waiting_for_user",
    "workflow_cancelled": "cancelled",
    "workflow_failed": "failed",
}
#: The event types that set the workflow's status by themselves.
_SETTERS = frozenset({*_STATUS_OF_TYPE, "workflow_completed"})


def status_set_by(event: Event) -> str | None:
    """The workflow's status after `event` when the event sets it."""
    if event.type == "workflow_completed":
        return str(event.payload.get("status", "completed"))
    if event.type == "workflow_progress":
        return event.payload.get("status") or None
    return _STATUS_OF_TYPE.get(event.type)


def statuses_after(events: list[Event], start_status: str) -> list[str]:
    """The workflow's status after each event (what `data.status` carries on the stream)."""
    statuses, status = [], start_status
    for event in events:
        status = status_set_by(event) or status
        statuses.append(status)
    return statuses


async def status_before(records: RecordStore, record_id: str, sequence: int) -> str:
    """The workflow's status just before event `sequence`, from two short reads rather than the
    whole log: the newest earlier event of a type that sets the status and, when that was a
    wait, the events since it (an answer or an approval moves the workflow back to "running"
    with a `workflow_progress` naming the status, the event that follows the wait)."""
    setter = await records.latest_events(record_id, 1, sequence, _SETTERS)
    if not setter:
        return "queued"  # a progress event names a status only to end a wait
    status = status_set_by(setter[0]) or "queued"
    after = setter[0].sequence
    while status == "waiting_for_user" and (page := await records.events(record_id, after, 100)):
        for event in page:
            if event.sequence >= sequence:
                return status
            status = status_set_by(event) or status
        after = page[-1].sequence
    return status


def _billing_event(preview: dict[str, Any], number: int) -> Announcement:
    return Announcement("billing_preview_updated", {"billingPreview": preview}, f"billing:{number}")


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
