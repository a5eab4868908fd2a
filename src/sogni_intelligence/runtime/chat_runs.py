"""Durable chat runs: the agent loop of chat completions, with every LLM round and every tool
batch a DBOS step.

The DBOS workflow keeps the turn's state (messages, media ids, tool results, usage) in its
own variables, fed from the memoised results of earlier steps, and hands it to each step; a
step persists the state it returns onto the record, so a step repeated after a crash
overwrites rather than appends. Events carry dedupe keys, so a repeated step never writes
one twice and sequences stay gap-free. Media tools become child workflows keyed by run and
tool call, so a repeated batch finds the workflows it already started.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dbos import DBOS, SetWorkflowID

from sogni_intelligence.agent.loop import (
    AgentLoop,
    Content,
    RoundOutput,
    Session,
    outcome,
    split_calls,
    turn_messages,
)
from sogni_intelligence.agent.media import with_uploads_note
from sogni_intelligence.agent.surfaces import tools_named
from sogni_intelligence.errors import ServiceError
from sogni_intelligence.llm.registry import ModelRegistry
from sogni_intelligence.media.fetch import FetchPolicy, fetch_into_store, refuse_early
from sogni_intelligence.runtime import endings
from sogni_intelligence.runtime.endings import end_failed_step, ends_record_on_error
from sogni_intelligence.runtime.records import Announcement, Event, Record, RecordStore
from sogni_intelligence.runtime.workflows import BACKBONE, WorkflowRuntime
from sogni_intelligence.tools.base import ToolError, failure
from sogni_intelligence.tools.media_context import KINDS, MediaContext

log = logging.getLogger(__name__)

SCHEMA_VERSION = "2026-05-14.1"
START_ENDPOINT = "chat_runs.start"
CONFIRM_ENDPOINT = "chat_runs.confirm-cost"
TERMINAL_EVENTS = frozenset({"run_completed", "run_partial_failure", "run_failed", "run_cancelled"})
#: The stream closes after these: the run ended or waits for the user.
STREAM_CLOSES_AFTER = TERMINAL_EVENTS | {"run_waiting_for_user"}
DELTA_FLUSH_S = 0.25
COST_WAIT_S = 7 * 24 * 3600
PREVIEW_TTL_S = 15 * 60
#: Our price of a capacity unit, for `runtime_config.jobConfirmationThresholdUsd`.
USD_PER_CAPACITY_UNIT = 0.01
MEDIA_CONTEXT_FIELDS = {
    "images": ("generated", "image"),
    "videos": ("generated", "video"),
    "audio": ("generated", "audio"),
    "uploadedImages": ("uploads", "image"),
    "uploadedVideos": ("uploads", "video"),
    "uploadedAudio": ("uploads", "audio"),
}


@dataclass
class ChatRunDeps:
    records: RecordStore
    agent: AgentLoop
    registry: ModelRegistry
    fetch_policy: FetchPolicy


_deps: ChatRunDeps | None = None


def _d() -> ChatRunDeps:
    if _deps is None:
        raise RuntimeError("the chat-run runtime is not launched")
    return _deps


def _now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------
# State shared by the steps


async def _session(record: Record, state: dict[str, Any]) -> Session:
    deps = _d()
    assets = deps.agent.assets
    media = MediaContext()
    for part in ("uploads", "generated"):
        for kind in KINDS:
            for asset_id in state["media"][part].get(kind, []):
                asset = await assets.get(asset_id, record.owner)
                if asset is None:
                    continue
                if part == "uploads":
                    media.add_upload(asset)
                else:
                    media.add_generated([asset])
    engine = record.data["engine"]

    async def on_workflow(call_id: str, tool: str, summary: dict[str, Any]) -> None:
        await deps.records.append(
            record.id,
            "tool_call_progress",
            {
                "toolCallId": call_id,
                "toolName": tool,
                "progress": 0.0,
                "status": "running",
                "workflowId": summary["workflowId"],
            },
            dedupe_key=f"{call_id}:workflow",
        )

    return Session(
        owner=record.owner,
        engine=deps.registry.resolve(engine["model"]).engine,
        request=engine["request"],
        client_tools=engine["clientTools"],
        hosted=tools_named(engine["hosted"]),
        tool_choice=engine["toolChoice"],
        media=media,
        source="chat.runs",
        key=record.id,
        on_workflow=on_workflow,
        budget=record.data["request"].get("maxEstimatedCapacityUnits"),
        spent=state["spent"],
        tool_results=list(state["toolResults"]),
        workflows=list(state["workflows"]),
        usage=dict(state["usage"]),
    )


def _state_of(session: Session, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "messages": messages,
        "media": session.media.asset_ids(),
        "toolResults": session.tool_results,
        "workflows": session.workflows,
        "usage": session.usage,
        "spent": session.spent,
    }


def _output(value: dict[str, Any]) -> RoundOutput:
    return RoundOutput(value["text"], value["calls"], value["finish"])


# --------------------------------------------------------------------------------------------
# Durable steps


@DBOS.step()
async def _run_begin(record_id: str) -> bool:
    records = _d().records
    moved = await records.transition(
        record_id,
        "running",
        allowed_from={"queued"},
        event=Announcement("run_started", {}, "run_started"),
    )
    record = moved or await records.get(record_id)
    return record is not None and record.status == "running"


@DBOS.step()
async def _run_ingest(record_id: str) -> dict[str, Any]:
    """Bring the request's media (http(s) URLs) into the store: the first state."""
    deps = _d()
    record = await deps.records.get(record_id)
    assert record is not None
    assets = deps.agent.assets
    media: dict[str, dict[str, list[str]]] = {
        "uploads": {k: [] for k in KINDS},
        "generated": {k: [] for k in KINDS},
    }
    lines = []
    for item in record.data["mediaInputs"]:
        asset = await fetch_into_store(
            item["url"],
            policy=deps.fetch_policy,
            store=assets,
            owner=record.owner,
            label=item["label"],
        )
        items = media[item["part"]][asset.kind]
        items.append(asset.id)
        index = -len(items) if item["part"] == "uploads" else len(items) - 1
        lines.append(f"{asset.kind} {index} = {item['label']}")
    state = {
        "messages": with_uploads_note(record.data["engine"]["request"]["messages"], lines),
        "media": media,
        "toolResults": [],
        "workflows": [],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "spent": 0.0,
    }
    patched = await deps.records.patch(record_id, {"state": state})
    if record.data["mediaInputs"]:  # from the patched record: the media is in its state
        await deps.records.append(
            record_id, "media_context_updated", await _media_payload(patched), dedupe_key="media:0"
        )
    return state


@DBOS.step()
async def _run_llm_round(
    record_id: str, number: int, state: dict[str, Any]
) -> dict[str, Any] | None:
    """One LLM round; its text goes out as coarse deltas. None when the run was cancelled."""
    deps = _d()
    records = deps.records
    record = await records.get(record_id)
    assert record is not None
    session = await _session(record, state)
    await records.append(
        record_id, "llm_round_started", {"round": number}, dedupe_key=f"r{number}:started"
    )

    async def generate() -> RoundOutput:
        pending: list[str] = []
        flushed = 0
        loop = asyncio.get_running_loop()
        last_flush = loop.time()
        output: RoundOutput | None = None
        async for item in deps.agent.round(session, state["messages"], number):
            if isinstance(item, Content):
                pending.append(item.text)
                if loop.time() - last_flush >= DELTA_FLUSH_S:
                    flushed += 1
                    await _delta(record_id, number, flushed, pending)
                    pending, last_flush = [], loop.time()
            else:
                output = item
        if pending:
            await _delta(record_id, number, flushed + 1, pending)
        assert output is not None
        return output

    output = await records.unless_cancelled(record_id, generate())
    if output is None:
        return None
    await records.append(
        record_id,
        "assistant_message_completed",
        {
            "round": number,
            "content": output.text or "",
            "finishReason": "tool_calls" if output.calls else output.finish,
            "toolCalls": [c["function"]["name"] for c in output.calls],
        },
        dedupe_key=f"r{number}:completed",
    )
    new_state = {**state, "usage": session.usage}
    await records.patch(record_id, {"state": new_state})
    return {
        "output": {"text": output.text, "calls": output.calls, "finish": output.finish},
        "state": new_state,
    }


async def _delta(record_id: str, number: int, k: int, parts: list[str]) -> None:
    await _d().records.append(
        record_id,
        "assistant_message_delta",
        {"round": number, "delta": "".join(parts)},
        dedupe_key=f"r{number}:delta:{k}",
    )


@DBOS.step()
async def _run_ask_cost_approval(record_id: str, call: dict[str, Any], units: float) -> bool:
    """Pause before a paid call; False when the run is no longer running."""
    records = _d().records
    record = await records.get(record_id)
    assert record is not None
    name = call["function"]["name"]
    token_type = record.data["request"].get("tokenType") or "spark"
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
async def _run_cost_resolved(record_id: str, call_id: str, decision: str) -> bool:
    """Back to running after the user's answer; False when the run was cancelled meanwhile."""
    records = _d().records
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


@DBOS.step()
async def _run_tool_batch(
    record_id: str,
    number: int,
    state: dict[str, Any],
    output: dict[str, Any],
    calls: list[dict[str, Any]],
    decided: dict[str, dict[str, Any]],
) -> dict[str, Any] | None:
    """Run the round's hosted calls; None when the run was cancelled meanwhile."""
    deps = _d()
    records = deps.records
    record = await records.get(record_id)
    assert record is not None
    session = await _session(record, state)
    before = {a for ids in state["media"]["generated"].values() for a in ids}
    for call in calls:
        await records.append(
            record_id,
            "tool_call_dispatched",
            {
                "toolCallId": call["id"],
                "toolName": call["function"]["name"],
                "arguments": call["function"].get("arguments"),
            },
            dedupe_key=f"{call['id']}:dispatched",
        )
    results = await records.unless_cancelled(
        record_id, deps.agent.run_calls(session, calls, number, decided)
    )
    current = await records.get(record_id)
    if current is None or current.status == "cancelled":
        results = None  # a cancel ends the run's child workflows, and so the calls, at once
    if results is None:  # cancelled: stop the jobs this batch started, listed or not
        workflows = deps.agent.workflows
        for summary in session.workflows:
            child = await workflows.deps.records.get(summary["workflowId"])
            if child is not None:
                await workflows.cancel(child, "the chat run was cancelled")
        return None
    artifacts = []
    for call, result in zip(calls, results, strict=True):
        refs = [
            {
                "id": a["asset_id"],
                "url": a["url"],
                "mediaType": a["type"],
                "toolName": call["function"]["name"],
                "workflowId": result.get("workflow_id"),
            }
            for a in result.get("output_assets") or []
        ]
        artifacts += [r for r in refs if r["id"] not in before]
        await records.append(
            record_id,
            "tool_call_resolved",
            {
                "toolCallId": call["id"],
                "toolName": call["function"]["name"],
                "status": _result_status(result),
                "artifacts": refs,
                "mediaUrls": [{"url": r["url"], "mediaType": r["mediaType"]} for r in refs],
                "summary": result.get("message") or result.get("summary"),
                "errorCode": result.get("error_type"),
            },
            dedupe_key=f"{call['id']}:resolved",
        )
    for artifact in artifacts:
        await records.append(
            record_id, "artifact_created", {"artifact": artifact}, dedupe_key=f"{artifact['id']}"
        )
    new_state = _state_of(
        session, state["messages"] + turn_messages(_output(output), calls, results)
    )
    record = await records.get(record_id)
    assert record is not None
    await records.patch(
        record_id,
        {
            "state": new_state,
            "toolCalls": [
                *record.data.get("toolCalls", []),
                *(
                    {
                        "toolCallId": c["id"],
                        "toolName": c["function"]["name"],
                        "arguments": c["function"].get("arguments"),
                        "sequence": number,
                    }
                    for c in calls
                ),
            ],
            "toolResults": [
                *record.data.get("toolResults", []),
                *(
                    {
                        "toolCallId": c["id"],
                        "status": _result_status(r),
                        "summary": r.get("message") or r.get("summary"),
                        "errorCode": r.get("error_type"),
                        "sequence": number,
                    }
                    for c, r in zip(calls, results, strict=True)
                ),
            ],
            "childWorkflowIds": [w["workflowId"] for w in session.workflows],
            "artifacts": [*record.data.get("artifacts", []), *artifacts],
        },
    )
    if artifacts:
        await records.append(
            record_id,
            "media_context_updated",
            await _media_payload(await records.get(record_id)),
            dedupe_key=f"media:r{number}",
        )
    return {"results": results, "state": new_state}


def _result_status(result: dict[str, Any]) -> str:
    if result.get("error_type") == "USER_CANCELLED":
        return "cancelled"
    return "ok" if result.get("ok") else "err"


@DBOS.step()
async def _run_finish(
    record_id: str,
    state: dict[str, Any],
    message: dict[str, Any],
    finish: str,
    ended_by: str | None,
) -> str:
    records = _d().records
    final = {"content": message.get("content") or "", "finishReason": finish}
    if message.get("tool_calls"):
        final["pendingToolCalls"] = message["tool_calls"]
    patch: dict[str, Any] = {
        "state": {**state, "messages": [*state["messages"], message]},
        "finalResponse": final,
        "completedAt": _now().isoformat(),
    }
    if ended_by == "ask_clarifying_question":
        waiting = {"reason": "ask_clarifying_question", "message": final["content"]}
        final["finishReason"] = "waiting_for_user"
        await records.transition(
            record_id,
            "waiting_for_user",
            allowed_from={"running"},
            patch={**patch, "waiting": waiting},
            event=Announcement("run_waiting_for_user", waiting, "question"),
        )
        return "waiting_for_user"
    failed = [r for r in state["toolResults"] if not r.get("ok")]
    status = "partial_failure" if failed else "completed"
    if failed:
        final["finishReason"] = "partial_failure" if finish == "stop" else finish
        patch["failureReason"] = "tool calls failed: " + "; ".join(map(_call_failure, failed))
    terminal = Announcement(
        "run_partial_failure" if failed else "run_completed",
        {
            "status": status,
            "content": final["content"],
            "finishReason": final["finishReason"],
            **({"reason": patch["failureReason"]} if failed else {}),
        },
        "terminal",
    )
    moved = await records.transition(
        record_id, status, allowed_from={"running"}, patch=patch, event=terminal
    )
    if moved is None:  # cancelled meanwhile (that stands), or already finished by a repeat
        current = await records.get(record_id)
        return current.status if current else "failed"
    return status


def _call_failure(result: dict[str, Any]) -> str:
    name = result.get("toolName") or result.get("tool", "?")
    return f"{name} ({result.get('error_type', 'UNKNOWN_ERROR')}: {result.get('message')})"


async def _media_payload(record: Record | None) -> dict[str, Any]:
    assert record is not None
    return {"mediaContext": await _public_media(record)}


async def _public_media(record: Record) -> dict[str, list[str]]:
    assets = _d().agent.assets
    media = (record.data.get("state") or {}).get("media") or {}
    out: dict[str, list[str]] = {}
    for name, (part, kind) in MEDIA_CONTEXT_FIELDS.items():
        urls = []
        for asset_id in (media.get(part) or {}).get(kind, []):
            asset = await assets.get(asset_id, record.owner)
            if asset is not None:
                urls.append(assets.url(asset))
        out[name] = urls
    return out


# --------------------------------------------------------------------------------------------
# The durable workflow


def _needs_approval(record: Record, call: dict[str, Any]) -> float | None:
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
    arguments = json.loads(_with_overrides(details["arguments"], overrides))
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


@DBOS.workflow()
@ends_record_on_error
async def chat_run(record_id: str) -> str | None:
    if not await _run_begin(record_id):
        return "cancelled"
    state = await _run_ingest(record_id)
    for number in range(_d().agent.limits.max_rounds):
        round_result = await _run_llm_round(record_id, number, state)
        if round_result is None:
            return "cancelled"
        state, output = round_result["state"], round_result["output"]
        record = await _d().records.get(record_id)
        assert record is not None
        client, hosted = split_calls(record.data["engine"]["clientTools"], output["calls"])
        decided: dict[str, dict[str, Any]] = {}
        for call in hosted:
            units = _needs_approval(record, call)
            if units is None:
                continue
            if not await _run_ask_cost_approval(record_id, call, units):
                return "cancelled"
            answer = await DBOS.recv_async(f"cost:{call['id']}", timeout_seconds=COST_WAIT_S)
            decision = (answer or {}).get("decision", "cancel")
            if not await _run_cost_resolved(record_id, call["id"], decision):
                return "cancelled"
            if decision != "confirm":
                decided[call["id"]] = failure(
                    call["function"]["name"],
                    ToolError("USER_CANCELLED", "the user declined this call's cost"),
                )
            elif answer and answer.get("overrides"):
                call["function"]["arguments"] = _with_overrides(
                    call["function"]["arguments"], answer["overrides"]
                )
        batch = await _run_tool_batch(record_id, number, state, output, hosted, decided)
        if batch is None:
            return "cancelled"
        state = batch["state"]
        final = outcome(_output(output), client, batch["results"])
        if final is not None:
            return await _run_finish(
                record_id, state, final.message, final.finish_reason, final.ended_by
            )
    return await end_failed_step(record_id, "the run used every LLM round without an answer")


def _child_workflow_ids(record: Record, events: list[Event]) -> list[str]:
    """The record lists a batch's child workflows when the batch ends; its progress events
    name each one as soon as it starts."""
    started = [
        e.payload["workflowId"]
        for e in events
        if e.type == "tool_call_progress" and e.payload.get("workflowId")
    ]
    return list(dict.fromkeys([*record.data.get("childWorkflowIds", []), *started]))


def _with_overrides(arguments: str, overrides: dict[str, Any]) -> str:
    try:
        current = json.loads(arguments or "{}")
    except ValueError:
        return arguments
    return json.dumps({**current, **overrides}) if isinstance(current, dict) else arguments


# --------------------------------------------------------------------------------------------
# The facade the API uses


class ChatRunRuntime:
    def __init__(self, deps: ChatRunDeps, workflows: WorkflowRuntime) -> None:
        self.deps = deps
        self.workflows = workflows

    def launch(self) -> None:
        global _deps
        _deps = self.deps
        endings.bind(self.deps.records)

    async def start(
        self,
        owner: str,
        request: dict[str, Any],
        engine: dict[str, Any],
        media_inputs: list[dict[str, str]],
        idempotency: tuple[str, Any] | None = None,
    ) -> tuple[Record, bool]:
        """Persist a run (with `run_created`) and start its DBOS workflow. `request` is the
        public echo, `engine` what the loop needs, `media_inputs` the URLs to fetch."""
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
        key = None if idempotency is None else (START_ENDPOINT, idempotency[0], idempotency[1])
        record, replayed = await self.deps.records.create("chat_run", owner, data, idempotency=key)
        if not replayed:
            await self.deps.records.append(record.id, "run_created", {}, dedupe_key="run_created")
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
            patch={"cancellationReason": reason, "completedAt": _now().isoformat()},
            event=Announcement(
                "run_cancelled", {"status": "cancelled", "reason": reason}, "terminal"
            ),
        )
        if moved is None:
            return record
        events = await self.deps.records.events(record.id)
        for child_id in _child_workflow_ids(moved, events):
            child = await self.workflows.deps.records.get(child_id)
            if child is not None:
                await self.workflows.cancel(child, "the chat run was cancelled")
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
        waiting = record.data.get("waiting") or {}
        if record.status != "waiting_for_user" or waiting.get("reason") != (
            "cost_approval_required"
        ):
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
        message = {"decision": decision, "overrides": overrides or {}}
        await DBOS.send_async(record.id, message, topic=f"cost:{tool_call_id}")
        for _ in range(100):  # the run leaves waiting_for_user as soon as it reads the answer
            current = await self.deps.records.get(record.id)
            if current is not None and current.status != "waiting_for_user":
                return current
            await asyncio.sleep(0.02)
        return await self.deps.records.get(record.id) or record

    async def recover(self) -> None:
        """Before DBOS recovers the interrupted runs: say so on each (`run_resumed`), and
        launch the runs a crash caught between their record and their workflow."""
        records = self.deps.records
        for record in await records.in_status("chat_run", ("running",)):
            recovery = dict(record.data.get("recovery") or {})
            count = int(recovery.get("resumeCount", 0)) + 1
            recovery.update(resumeCount=count, lastResumedAt=_now().isoformat())
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
        """The ChatRunRecord of the spec; media URLs are signed afresh on every read."""
        data = record.data
        state = data.get("state") or {}
        events = await self.deps.records.events(record.id)
        return {
            "runId": record.id,
            "status": record.status,
            "schemaVersion": SCHEMA_VERSION,
            "backbone": BACKBONE,
            "scope": {
                "ownerWalletAddress": None,
                "apiKeyId": record.owner,
                "tokenType": data["request"].get("tokenType"),
                "appSource": data["request"].get("appSource"),
            },
            "request": data["request"],
            "messages": [*data["request"]["messages"], *_transcript(data)],
            "toolCalls": data.get("toolCalls", []),
            "toolResults": data.get("toolResults", []),
            "mediaContext": await _public_media(record),
            "childWorkflowIds": _child_workflow_ids(record, events),
            "billingPreview": data.get("billingPreview"),
            "billingPreviews": data.get("billingPreviews", []),
            "artifacts": data.get("artifacts", []),
            "finalResponse": data.get("finalResponse"),
            "waiting": data.get("waiting") if record.status == "waiting_for_user" else None,
            "usage": state.get("usage"),
            "events": [self.public_event(e) for e in events],
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
