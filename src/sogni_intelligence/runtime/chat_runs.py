"""Durable chat runs: the agent loop of chat completions as a DBOS workflow, and the facade
the API starts, cancels, confirms and reads runs through.

The workflow drives the rounds in the order `agent.driver` sets for every turn; each LLM
round and each tool batch is a step (`runtime.chat_run_steps`), and a paid call may pause the
run for the caller's approval (`runtime.cost_approval`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import asdict
from typing import Any

from dbos import DBOS, SetWorkflowID

from sogni_intelligence.agent.driver import Content, Final, RoundOutput, drive
from sogni_intelligence.media.fetch import refuse_early
from sogni_intelligence.runtime import chat_run_steps as steps
from sogni_intelligence.runtime import cost_approval
from sogni_intelligence.runtime.chat_run_media import asset_manifest
from sogni_intelligence.runtime.chat_run_steps import DEPS, ChatRunDeps, now, round_output
from sogni_intelligence.runtime.endings import ends_record_on_error
from sogni_intelligence.runtime.launched import RECORDS
from sogni_intelligence.runtime.workflows import BACKBONE, RECORD_EVENTS
from sogni_intelligence.store.keys import fingerprint_of
from sogni_intelligence.store.records import Announcement, Event, Record
from sogni_intelligence.tools.base import ToolError, failure

log = logging.getLogger(__name__)

SCHEMA_VERSION = "2026-05-14.1"
START_ENDPOINT = "chat_runs.start"
CONFIRM_ENDPOINT = "chat_runs.confirm-cost"
TERMINAL_EVENTS = frozenset({"run_completed", "run_partial_failure", "run_failed", "run_cancelled"})
#: The stream closes after these: the run ended or waits for the user.
STREAM_CLOSES_AFTER = TERMINAL_EVENTS | {"run_waiting_for_user"}


@DBOS.workflow()
@ends_record_on_error
async def chat_run(record_id: str) -> str | None:
    if not await steps.run_begin(record_id):
        return "cancelled"
    state = await steps.run_ingest(record_id)
    record = await DEPS().records.get(record_id)
    assert record is not None
    turn = _DurableTurn(record_id, state, record.data["engine"]["clientTools"])
    async with aclosing(drive(turn, DEPS().agent.limits.max_rounds)) as events:
        async for event in events:
            if isinstance(event, Final):
                return await steps.run_finish(
                    record_id, turn.state, event.message, event.finish_reason, event.ended_by
                )
    return "cancelled"


class _DurableTurn:
    """A chat run's turn steps: each round and each batch is a DBOS step that persists what
    it did; the state they return is the workflow's own, fed back into the next step, so a
    workflow resumed after a crash rebuilds it from the steps' memoised results."""

    def __init__(
        self, record_id: str, state: dict[str, Any], client_tools: list[dict[str, Any]]
    ) -> None:
        self.record_id = record_id
        self.state = state
        self.client_tools = client_tools
        #: The calls' progress goes onto the record as the workflows report it.
        self.ticks = None

    async def llm_round(self, number: int) -> AsyncIterator[Content | RoundOutput]:
        result = await steps.run_llm_round(self.record_id, number, self.state)
        if result is None:
            return
        self.state = result["state"]
        yield round_output(result["output"])

    async def approve(self, calls: list[dict[str, Any]]) -> dict[str, dict[str, Any]] | None:
        """Pause for the caller's approval of each paid call, one at a time."""
        record = await DEPS().records.get(self.record_id)
        assert record is not None
        decided: dict[str, dict[str, Any]] = {}
        for call in calls:
            units = cost_approval.call_cost_to_approve(record, call)
            if units is None:
                continue
            if not await cost_approval.ask_call_approval(self.record_id, call, units):
                return None
            answer = await DBOS.recv_async(
                cost_approval.call_topic(call["id"]), timeout_seconds=cost_approval.APPROVAL_WAIT_S
            )
            decision = (answer or {}).get("decision", "cancel")
            if not await cost_approval.call_approval_resolved(self.record_id, call["id"], decision):
                return None
            if decision != "confirm":
                decided[call["id"]] = failure(
                    call["function"]["name"],
                    ToolError("USER_CANCELLED", "the user declined this call's cost"),
                )
            elif answer and answer.get("overrides"):
                call["function"]["arguments"] = cost_approval.with_overrides(
                    call["function"]["arguments"], answer["overrides"]
                )
        return decided

    async def tool_batch(
        self,
        number: int,
        output: RoundOutput,
        calls: list[dict[str, Any]],
        decided: dict[str, dict[str, Any]],
    ) -> list[dict[str, Any]] | None:
        batch = await steps.run_tool_batch(
            self.record_id, number, self.state, asdict(output), calls, decided
        )
        if batch is None:
            return None
        self.state = batch["state"]
        return batch["results"]


def _child_workflow_ids(record: Record, events: list[Event]) -> list[str]:
    """The record lists a batch's child workflows when the batch ends; its progress events
    name each one as soon as it starts."""
    started = [
        e.payload["workflowId"]
        for e in events
        if e.type == "tool_call_progress" and e.payload.get("workflowId")
    ]
    return list(dict.fromkeys([*record.data.get("childWorkflowIds", []), *started]))


# --------------------------------------------------------------------------------------------
# The facade the API uses


class ChatRunRuntime:
    def __init__(self, deps: ChatRunDeps) -> None:
        self.deps = deps

    def launch(self) -> None:
        DEPS.bind(self.deps)
        RECORDS.bind(self.deps.records)

    async def start(
        self,
        owner: str,
        request: dict[str, Any],
        engine: dict[str, Any],
        media_inputs: list[dict[str, str]],
        idempotency: tuple[str, Any] | None = None,
        fork: dict[str, Any] | None = None,
    ) -> tuple[Record, bool]:
        """Persist a run (with `run_created`) and start its DBOS workflow. `request` is the
        public echo, `engine` what the loop needs, `media_inputs` the URLs to fetch, `fork`
        the run and point it continues from (its media and the original's later rounds)."""
        for item in media_inputs:
            refuse_early(item["url"], self.deps.fetch_policy, item.get("param", item["label"]))
        data = {
            "request": request,
            "engine": engine,
            "mediaInputs": media_inputs,
            "toolCalls": [],
            "toolResults": [],
            "childWorkflowIds": [],
            "artifacts": [],
            "billingPreviews": [],
            "recovery": {"resumeCount": 0},
        }
        if fork is not None:
            data["fork"] = fork
        key = None if idempotency is None else (START_ENDPOINT, idempotency[0], idempotency[1])
        record, replayed = await self.deps.records.create(
            "chat_run",
            owner,
            data,
            idempotency=key,
            first_event=Announcement("run_created", {}, "run_created"),
        )
        if not replayed:
            await self._launch(record.id)
        return record, replayed

    async def _launch(self, record_id: str) -> None:
        with SetWorkflowID(record_id):
            await DBOS.start_workflow_async(chat_run, record_id)

    async def cancel(self, record: Record, reason: str | None) -> Record:
        """Idempotent: a finished run comes back unchanged. Stops the LLM round or tool batch
        in flight and the run's child workflows."""
        moved = await self.deps.records.transition(
            record.id,
            "cancelled",
            allowed_from={"queued", "running", "waiting_for_user"},
            patch={"cancellationReason": reason, "completedAt": now().isoformat()},
            event=Announcement(
                "run_cancelled", {"status": "cancelled", "reason": reason}, "terminal"
            ),
        )
        if moved is None:
            return record
        events = await self.deps.records.events(record.id)
        await self.deps.workflows.cancel_all(
            _child_workflow_ids(moved, events), "the chat run was cancelled"
        )
        try:
            await DBOS.cancel_workflow_async(record.id)
        except Exception:  # the DBOS workflow may be gone; the record is what counts
            log.debug("DBOS cancel of %s failed", record.id, exc_info=True)
        return moved

    async def confirm_cost(
        self,
        record: Record,
        tool_call_id: str,
        decision: str,
        accepted_preview: dict[str, Any] | None,
        overrides: dict[str, Any] | None,
    ) -> Record:
        cost_approval.check_call_confirmation(
            record, tool_call_id, decision, accepted_preview, overrides
        )
        message = {"decision": decision, "overrides": overrides or {}}
        return await cost_approval.deliver_decision(
            self.deps.records, record, message, cost_approval.call_topic(tool_call_id)
        )

    async def recover(self) -> None:
        """Before DBOS recovers the interrupted runs: say so on each (`run_resumed`), and
        launch the runs a crash caught between their record and their workflow."""
        records = self.deps.records
        for record in await records.in_status("chat_run", ("running",)):
            recovery = dict(record.data.get("recovery") or {})
            count = int(recovery.get("resumeCount", 0)) + 1
            recovery.update(resumeCount=count, lastResumedAt=now().isoformat())
            await records.patch(record.id, {"recovery": recovery})
            await records.append(
                record.id,
                "run_resumed",
                {"reason": "server_restart", "resumeCount": count},
                dedupe_key=f"resumed:{count}",
            )

    async def launch_pending(self) -> None:
        for record in await self.deps.records.unlaunched("chat_run"):
            if await DBOS.get_workflow_status_async(record.id) is None:
                await self._launch(record.id)

    async def public(self, record: Record) -> dict[str, Any]:
        """The ChatRunRecord of the spec; media URLs are signed afresh on every read. It carries
        its latest `RECORD_EVENTS` events."""
        data = record.data
        state = data.get("state") or {}
        events = await self.deps.records.all_events(record.id)
        return {
            "runId": record.id,
            "status": record.status,
            "schemaVersion": SCHEMA_VERSION,
            "backbone": BACKBONE,
            "scope": {
                "ownerWalletAddress": None,
                "apiKeyFingerprint": fingerprint_of(record.owner),
                "tokenType": data["request"].get("tokenType"),
                "appSource": data["request"].get("appSource"),
            },
            "request": data["request"],
            "messages": [*data["request"]["messages"], *_transcript(data)],
            "toolCalls": data.get("toolCalls", []),
            "toolResults": data.get("toolResults", []),
            "mediaContext": await steps.public_media(record),
            "assetManifest": await asset_manifest(self.deps.agent.assets, record),
            "childWorkflowIds": _child_workflow_ids(record, events),
            "billingPreview": data.get("billingPreview"),
            "billingPreviews": data.get("billingPreviews", []),
            "artifacts": data.get("artifacts", []),
            "finalResponse": data.get("finalResponse"),
            "waiting": data.get("waiting") if record.status == "waiting_for_user" else None,
            "usage": state.get("usage"),
            "events": [self.public_event(e) for e in events[-RECORD_EVENTS:]],
            "recovery": data.get("recovery"),
            "failureReason": data.get("failureReason"),
            "cancellationReason": data.get("cancellationReason"),
            "timestamps": {
                "createdAt": record.created_at.isoformat(),
                "updatedAt": record.updated_at.isoformat(),
                "completedAt": data.get("completedAt"),
            },
        }

    @staticmethod
    def public_event(event: Event) -> dict[str, Any]:
        return {
            "sequence": event.sequence,
            "type": event.type,
            "at": event.at.isoformat(),
            "payload": event.payload,
        }


def _transcript(data: dict[str, Any]) -> list[dict[str, Any]]:
    """What the run added to the conversation (after the request's own messages)."""
    state = data.get("state") or {}
    start = len(data["engine"]["request"]["messages"])
    return list(state.get("messages", [])[start:])
