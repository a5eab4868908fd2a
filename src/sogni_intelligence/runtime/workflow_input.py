"""A workflow step that asks the user (an interactive template stage, or a plan step of
`ask_clarifying_question`): the workflow pauses in `waiting_for_user` with the reason
`workflow_user_input_required`, and goes on when the answer arrives as a DBOS message on the
step's topic (`deliver_answer`). DBOS keeps the wait and the message, so a restart loses
neither. No answer in the step's time fails the workflow, with that as its reason.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dbos import DBOS

from sogni_intelligence.errors import ServiceError
from sogni_intelligence.runtime.cost_approval import deliver_decision
from sogni_intelligence.runtime.launched import RECORDS
from sogni_intelligence.store.records import Announcement, Record, RecordStore
from sogni_intelligence.tools.plan_model import DEFAULT_ANSWER_WAIT_S, PlanStep

WAITING_REASON = "workflow_user_input_required"


def answer_topic(step_id: str) -> str:
    return f"user_input:{step_id}"


def answer_wait_s(step: PlanStep) -> int:
    return step.answerTimeoutSeconds or DEFAULT_ANSWER_WAIT_S


def _now() -> datetime:
    return datetime.now(UTC)


@DBOS.step()
async def ask_user(record_id: str, step: dict[str, Any]) -> bool:
    """Pause for the user's answer to `step`; False when the workflow no longer runs."""
    records = RECORDS()
    plan_step = PlanStep.model_validate(step)
    wait_s = answer_wait_s(plan_step)
    request = {
        "stepId": plan_step.id,
        "question": plan_step.arguments.get("question"),
        "options": plan_step.arguments.get("options"),
        "timeoutSeconds": wait_s,
        "expiresAt": (_now() + timedelta(seconds=wait_s)).isoformat(),
    }
    request = {key: value for key, value in request.items() if value is not None}
    moved = await records.transition(
        record_id,
        "waiting_for_user",
        allowed_from={"running"},
        patch={"waitingReason": WAITING_REASON, "awaitingInput": request},
        event=Announcement(
            WAITING_REASON,
            {"status": "waiting_for_user", "reason": WAITING_REASON, **request},
            f"{plan_step.id}:input-required",
        ),
    )
    if moved is None:  # repeated after a crash: the pause may be in place, or even answered
        current = await records.get(record_id)
        return current is not None and current.status in ("waiting_for_user", "running")
    return True


def _with_step(record: Record, step_id: str, **fields: Any) -> list[dict[str, Any]]:
    return [{**s, **fields} if s["id"] == step_id else s for s in record.data["steps"]]


@DBOS.step()
async def answer_received(
    record_id: str, step_id: str, message: dict[str, Any] | None, wait_s: int
) -> dict[str, Any] | None:
    """Back to `running` with the answer as the step's result; None when the workflow ends
    here: no answer came in time (it fails, saying so), or it was cancelled meanwhile."""
    records = RECORDS()
    record = await records.get(record_id)
    assert record is not None
    if message is None:
        reason = f"no answer to step '{step_id}' within {wait_s} s"
        error = {"message": reason, "errorType": "USER_INPUT_INCOMPLETE"}
        await records.transition(
            record_id,
            "failed",
            allowed_from={"waiting_for_user"},
            patch={
                "failureReason": reason,
                "error": error,
                "completedAt": _now().isoformat(),
                "waitingReason": None,
                "awaitingInput": None,
                "steps": _with_step(record, step_id, status="failed", error=error),
            },
            event=Announcement(
                "workflow_failed", {"status": "failed", "reason": reason}, "terminal"
            ),
        )
        return None
    answer = str(message.get("answer", ""))
    moved = await records.transition(
        record_id,
        "running",
        allowed_from={"waiting_for_user"},
        patch={"waitingReason": None, "awaitingInput": None},
        event=Announcement(
            "workflow_progress",
            {"status": "running", "inputReceived": {"stepId": step_id}},
            f"{step_id}:input-received",
        ),
    )
    if moved is None:  # repeated after a crash the workflow runs again; else it was cancelled
        current = await records.get(record_id)
        if current is None or current.status != "running":
            return None
    await records.append(
        record_id,
        "step_completed",
        {"stepId": step_id, "assetIds": [], "output": {"answer": answer}},
        dedupe_key=f"{step_id}:completed",
    )
    return {"status": "completed", "assets": [], "kinds": [], "result": {}, "answer": answer}


async def wait_for_answer(record_id: str, step: PlanStep) -> dict[str, Any] | None:
    """Pause for the user's answer to `step`; its result, or None when the workflow ended
    meanwhile (cancelled, or no answer in time)."""
    if not await ask_user(record_id, step.model_dump()):
        return None
    wait_s = answer_wait_s(step)
    message = await DBOS.recv_async(answer_topic(step.id), timeout_seconds=wait_s)
    return await answer_received(record_id, step.id, message, wait_s)


async def deliver_answer(
    records: RecordStore, record: Record, answer: str, step_id: str | None
) -> Record:
    """Hand the user's answer to the waiting workflow; a 409 when it waits for none (or for
    another step's)."""
    awaiting = record.data.get("awaitingInput") or {}
    if record.status != "waiting_for_user" or not awaiting:
        raise ServiceError(
            f"the workflow is not waiting for user input (it is {record.status})",
            409,
            "conflict_error",
            "workflow_not_waiting",
        )
    if step_id is not None and step_id != awaiting["stepId"]:
        raise ServiceError(
            f"the workflow waits for the answer of step {awaiting['stepId']!r}, not {step_id!r}",
            409,
            "conflict_error",
            "wrong_step",
            "stepId",
        )
    return await deliver_decision(
        records, record, {"answer": answer}, answer_topic(awaiting["stepId"])
    )
