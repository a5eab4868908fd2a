"""Cost approval: a durable run that would spend more than its caller allows pauses in
`waiting_for_user` with a cost preview, and goes on only on the caller's answer.

Two shapes share the mechanism. A creative workflow asks once for its whole plan before any
step runs (`ask_plan_approval`); a chat run asks before each hosted call whose estimate is
over the run's threshold (`ask_call_approval`), and its answer may carry argument overrides.
The answer reaches the waiting DBOS workflow as a message (`deliver_decision`).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from dbos import DBOS

from sogni_intelligence.agent.surfaces import tools_named
from sogni_intelligence.errors import ServiceError
from sogni_intelligence.runtime.launched import RECORDS
from sogni_intelligence.store.records import Announcement, Record, RecordStore

#: How long a paused run or workflow waits for an answer.
APPROVAL_WAIT_S = 7 * 24 * 3600
#: The topic a workflow's plan approval arrives on; a chat run's is per call (`call_topic`).
PLAN_APPROVAL_TOPIC = "cost_approval"
PREVIEW_TTL_S = 15 * 60
#: Our price of a capacity unit, for `runtime_config.jobConfirmationThresholdUsd`.
USD_PER_CAPACITY_UNIT = 0.01
#: What a preview is denominated in when the request named no token type.
DEFAULT_TOKEN_TYPE = "spark"


def _now() -> datetime:
    return datetime.now(UTC)


def call_topic(tool_call_id: str) -> str:
    return f"cost:{tool_call_id}"


async def deliver_decision(
    records: RecordStore, record: Record, message: Any, topic: str
) -> Record:
    """Send the caller's answer to the waiting workflow and give back the record once the
    workflow has read it (it leaves `waiting_for_user` at once), or as it is after 2 s."""
    await DBOS.send_async(record.id, message, topic=topic)
    for _ in range(100):
        current = await records.get(record.id)
        if current is not None and current.status != "waiting_for_user":
            return current
        await asyncio.sleep(0.02)
    return await records.get(record.id) or record


# --- a workflow's plan -----------------------------------------------------------------------


def plan_preview(data: dict[str, Any]) -> dict[str, Any]:
    """A workflow's billing preview: the capacity-unit estimates its start made of each step
    (`tools.plans.step_costs`, the numbers the approval threshold is held to) and how the work
    is billed."""
    options = data.get("options") or {}
    units = data["estimatedCapacityUnits"]
    return {
        "estimatedCapacityUnits": units,
        "estimatedUsdCost": round(units * USD_PER_CAPACITY_UNIT, 4),
        "tokenType": options.get("tokenType") or DEFAULT_TOKEN_TYPE,
        "billingMode": options.get("billingMode"),
        "steps": [
            {
                "stepId": s["id"],
                "toolName": s["toolName"],
                "estimatedCapacityUnits": s["estimatedCapacityUnits"],
            }
            for s in data["steps"]
        ],
    }


@DBOS.step()
async def ask_plan_approval(record_id: str) -> bool:
    """Pause in `waiting_for_user` with a cost preview; False if the workflow is not running."""
    records = RECORDS()
    record = await records.get(record_id)
    assert record is not None
    preview = plan_preview(record.data)
    moved = await records.transition(
        record_id,
        "waiting_for_user",
        allowed_from={"running"},
        patch={
            "waitingReason": "cost_approval_required",
            "awaitingCostApproval": True,
            "billingPreview": preview,
        },
        event=Announcement(
            "workflow_waiting_for_user",
            {"status": "waiting_for_user", "reason": "cost_approval_required", "preview": preview},
            "waiting:cost",
        ),
    )
    if moved is None:  # repeated after a crash: the pause may be in place, or even answered
        current = await records.get(record_id)
        return current is not None and current.status in ("waiting_for_user", "running")
    return True


@DBOS.step()
async def plan_approval_resolved(record_id: str, decision: str) -> bool:
    """Back to `running` after a confirmation; True when the workflow should go on."""
    records = RECORDS()
    if decision != "confirm":
        # No approval came (it timed out): the workflow ends here, visibly.
        reason = "cost approval not given"
        await records.transition(
            record_id,
            "cancelled",
            allowed_from={"waiting_for_user"},
            patch={
                "cancellationReason": reason,
                "completedAt": _now().isoformat(),
                "awaitingCostApproval": False,
            },
            event=Announcement(
                "workflow_cancelled", {"status": "cancelled", "reason": reason}, "terminal"
            ),
        )
        return False
    moved = await records.transition(
        record_id,
        "running",
        allowed_from={"waiting_for_user"},
        patch={"waitingReason": None, "awaitingCostApproval": False},
        event=Announcement(
            "workflow_progress", {"status": "running", "costApproved": True}, "cost:approved"
        ),
    )
    if moved is None:  # repeated after a crash, the workflow may already run again
        current = await records.get(record_id)
        return current is not None and current.status == "running"
    return True


# --- a chat run's hosted calls ---------------------------------------------------------------


def call_cost_to_approve(record: Record, call: dict[str, Any]) -> float | None:
    """The call's estimate when the run's settings want it confirmed first, else None."""
    request = record.data["request"]
    config = request.get("runtimeConfig") or {}
    if request.get("confirmCost") or not config.get("requireJobConfirmation"):
        return None
    name = call["function"]["name"]
    tool = tools_named([name]).get(name)
    if tool is None or tool.kind != "media":
        return None  # only media jobs cost capacity
    try:
        units = tool.cost(tool.args.model_validate(json.loads(call["function"]["arguments"])))
    except ValueError:
        return None  # bad arguments: the tool reports them without running
    threshold = float(config.get("jobConfirmationThresholdUsd") or 0)
    return units if units * USD_PER_CAPACITY_UNIT > threshold else None


def _check_overrides(details: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Bad overrides are a 400, so a confirmation never dispatches arguments the tool would
    refuse."""
    tool = tools_named([details["toolName"]])[details["toolName"]]
    arguments = json.loads(with_overrides(details["arguments"], overrides))
    try:
        tool.args.model_validate(arguments)
    except ValueError as exc:
        raise ServiceError(
            f"overrides do not fit {tool.name}: {exc}",
            400,
            "invalid_request_error",
            "invalid_overrides",
            "overrides",
        ) from exc


def with_overrides(arguments: str, overrides: dict[str, Any]) -> str:
    try:
        current = json.loads(arguments or "{}")
    except ValueError:
        return arguments
    return json.dumps({**current, **overrides}) if isinstance(current, dict) else arguments


def check_call_confirmation(
    record: Record,
    tool_call_id: str,
    decision: str,
    accepted_preview: dict[str, Any] | None,
    overrides: dict[str, Any] | None,
) -> None:
    """A ServiceError (409, or 400 for bad overrides) unless the answer fits what the run
    waits for: the same call, the preview it showed, still valid."""
    waiting = record.data.get("waiting") or {}
    if record.status != "waiting_for_user" or waiting.get("reason") != ("cost_approval_required"):
        raise ServiceError(
            f"the run is not waiting for a cost confirmation (it is {record.status})",
            409,
            "conflict_error",
            "run_not_waiting",
        )
    details = waiting.get("details") or {}
    if details.get("toolCallId") != tool_call_id:
        raise ServiceError(
            f"the run waits for tool call {details.get('toolCallId')}, not {tool_call_id}",
            409,
            "conflict_error",
            "wrong_tool_call",
            "tool_call_id",
        )
    if decision == "confirm":
        preview = details.get("costApprovalPreview")
        if accepted_preview is None:
            raise ServiceError(
                'acceptedCostPreview is required for decision="confirm"',
                400,
                "invalid_request_error",
                "missing_cost_preview",
                "acceptedCostPreview",
            )
        if accepted_preview != preview:
            raise ServiceError(
                "the cost preview changed; read the run and confirm again",
                409,
                "conflict_error",
                "stale_cost_preview",
            )
        if datetime.fromisoformat(preview["validityUntil"]) < _now():
            raise ServiceError(
                "the cost preview expired; read the run and confirm again",
                409,
                "conflict_error",
                "expired_cost_preview",
            )
        if overrides:
            # The user chose the overrides, so they may change the estimate; the run's
            # ceiling still holds when the call runs (COST_LIMIT_EXCEEDED).
            _check_overrides(details, overrides)


@DBOS.step()
async def ask_call_approval(record_id: str, call: dict[str, Any], units: float) -> bool:
    """Pause before a paid call; False when the run is no longer running."""
    records = RECORDS()
    record = await records.get(record_id)
    assert record is not None
    name = call["function"]["name"]
    token_type = record.data["request"].get("tokenType") or DEFAULT_TOKEN_TYPE
    preview = {
        "totalEstimatedCapacityUnits": units,
        "tokenType": token_type,
        "validityUntil": (_now() + timedelta(seconds=PREVIEW_TTL_S)).isoformat(),
        "perToolBreakdown": [{"toolCallId": call["id"], "toolName": name, "capacityUnits": units}],
    }
    waiting = {
        "reason": "cost_approval_required",
        "message": f"{name} is estimated at {units} capacity units; confirm to go on.",
        "details": {
            "costApprovalPreview": preview,
            "toolCallId": call["id"],
            "toolName": name,
            "arguments": call["function"].get("arguments") or "{}",
        },
    }
    moved = await records.transition(
        record_id,
        "waiting_for_user",
        allowed_from={"running"},
        patch={
            "waiting": waiting,
            "billingPreview": preview,
            "billingPreviews": [*record.data.get("billingPreviews", []), preview],
        },
    )
    if moved is None:
        # Repeated after a crash: the run may already wait for this call (keep its preview).
        current = await records.get(record_id)
        waiting = (current.data.get("waiting") or {}) if current is not None else {}
        if current is None or current.status != "waiting_for_user":
            return False
        if (waiting.get("details") or {}).get("toolCallId") != call["id"]:
            return False
        preview = waiting["details"]["costApprovalPreview"]
    await records.append(
        record_id,
        "billing_preview_updated",
        {"billingPreview": preview},
        dedupe_key=f"{call['id']}:billing",
    )
    await records.append(
        record_id,
        "run_awaiting_cost_confirmation",
        {
            "toolCallId": call["id"],
            "toolName": name,
            "estimatedCost": units,
            "estimatedUsdCost": round(units * USD_PER_CAPACITY_UNIT, 4),
            "tokenType": preview["tokenType"],
            "toolArgs": call["function"].get("arguments"),
        },
        dedupe_key=f"{call['id']}:cost",
    )
    await records.append(
        record_id,
        "run_waiting_for_user",
        waiting,
        dedupe_key=f"{call['id']}:waiting",
    )
    return True


@DBOS.step()
async def call_approval_resolved(record_id: str, call_id: str, decision: str) -> bool:
    """Back to running after the user's answer; False when the run was cancelled meanwhile."""
    records = RECORDS()
    moved = await records.transition(
        record_id, "running", allowed_from={"waiting_for_user"}, patch={"waiting": None}
    )
    if moved is None:
        # Repeated after a crash, the run is running again already; otherwise it was cancelled.
        current = await records.get(record_id)
        if current is None or current.status != "running":
            return False
    await records.append(
        record_id,
        "run_cost_confirmation_resolved",
        {"toolCallId": call_id, "decision": decision},
        dedupe_key=f"{call_id}:resolved-cost",
    )
    await records.append(
        record_id,
        "run_resumed",
        {"reason": "cost_confirmed" if decision == "confirm" else "cost_declined"},
        dedupe_key=f"{call_id}:resumed",
    )
    return True
