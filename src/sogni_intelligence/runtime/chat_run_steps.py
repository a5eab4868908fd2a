"""The durable steps of a chat run: each LLM round and each batch of hosted tool calls.

The DBOS workflow (`runtime.chat_runs`) keeps the turn's state (messages, media ids, tool
results, usage) in its own variables, fed from the memoised results of earlier steps, and hands
it to each step; a step persists the state it returns onto the record, so a step repeated
after a crash overwrites rather than appends. Events carry dedupe keys, so a repeated step
never writes one twice and sequences stay gap-free. Media tools become child workflows keyed
by run and tool call, so a repeated batch finds the workflows it already started.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dbos import DBOS

from sogni_intelligence.agent.driver import Content, RoundOutput, ToolProgress
from sogni_intelligence.agent.loop import AgentLoop, Session, turn_messages
from sogni_intelligence.agent.media import with_uploads_note
from sogni_intelligence.agent.surfaces import tools_named
from sogni_intelligence.llm.registry import ModelRegistry
from sogni_intelligence.media.fetch import FetchPolicy
from sogni_intelligence.runtime.chat_run_forks import diverged
from sogni_intelligence.runtime.chat_run_media import asset_manifest, media_turn_intent
from sogni_intelligence.runtime.launched import Launched
from sogni_intelligence.runtime.workflows import WorkflowRuntime
from sogni_intelligence.store.records import Announcement, Record, RecordStore
from sogni_intelligence.tools.content_filter import requested
from sogni_intelligence.tools.media_context import MediaContext
from sogni_intelligence.tools.media_inputs import MediaInput, ingest

DELTA_FLUSH_S = 0.25
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
    workflows: WorkflowRuntime


DEPS: Launched[ChatRunDeps] = Launched("the chat-run runtime")


def now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------
# State shared by the steps


async def _session(record_id: str, state: dict[str, Any]) -> tuple[Session, Record]:
    """The loop's session as the state left it (the run's engine, tools and media), and the
    run's record."""
    deps = DEPS()
    record = await deps.records.get(record_id)
    assert record is not None
    media = await MediaContext.load(deps.agent.assets, record.owner, state["media"])
    engine = record.data["engine"]
    runtime_config = record.data["request"].get("runtimeConfig") or {}

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

    async def on_progress(tick: ToolProgress) -> None:
        # A batch repeated after a crash relays the same ticks again: the key makes it a no-op.
        await deps.records.append(
            record.id,
            "tool_call_progress",
            tick.progress_payload(),
            dedupe_key=f"{tick.call_id}:progress:{tick.progress}",
        )

    session = Session(
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
        billing={
            name: value
            for name in ("tokenType", "billingMode", "appSource")
            if (value := record.data["request"].get(name)) is not None
        },
        on_progress=on_progress,
        budget=record.data["request"].get("maxEstimatedCapacityUnits"),
        spent=state["spent"],
        tool_results=list(state["toolResults"]),
        workflows=list(state["workflows"]),
        usage=dict(state["usage"]),
        safe_content_filter=requested(
            runtime_config.get("safeContentFilter", runtime_config.get("safe_content_filter"))
        ),
    )
    return session, record


def _state_of(session: Session, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "messages": messages,
        "media": session.media.asset_ids(),
        "toolResults": session.tool_results,
        "workflows": session.workflows,
        "usage": session.usage,
        "spent": session.spent,
    }


def round_output(value: dict[str, Any]) -> RoundOutput:
    return RoundOutput(value["text"], value["calls"], value["finish"])


# --------------------------------------------------------------------------------------------
# Durable steps


@DBOS.step()
async def run_begin(record_id: str) -> bool:
    records = DEPS().records
    moved = await records.transition(
        record_id,
        "running",
        allowed_from={"queued"},
        event=Announcement("run_started", {}, "run_started"),
    )
    record = moved or await records.get(record_id)
    return record is not None and record.status == "running"


@DBOS.step()
async def run_ingest(record_id: str) -> dict[str, Any]:
    """Bring the request's media (http(s) URLs) into the store: the first state."""
    deps = DEPS()
    record = await deps.records.get(record_id)
    assert record is not None
    inputs = [
        MediaInput(
            item["url"],
            item["label"],
            item.get("param", item["label"]),
            generated=item["part"] == "generated",
        )
        for item in record.data["mediaInputs"]
    ]
    fork = record.data.get("fork")
    start = None
    if fork is not None:  # a fork keeps the media of its history, with the same indices
        start = await MediaContext.load(deps.agent.assets, record.owner, fork["media"])
    media, ingested = await ingest(
        record.owner, inputs, deps.agent.assets, deps.fetch_policy, start
    )
    lines = [item.note() for item in ingested]
    state = {
        "messages": with_uploads_note(record.data["engine"]["request"]["messages"], lines),
        "media": media.asset_ids(),
        "toolResults": [],
        "workflows": [],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "spent": 0.0,
    }
    patched = await deps.records.patch(record_id, {"state": state})
    # From the patched record: the media is in its state.
    if record.data["mediaInputs"] or fork is not None:
        await _media_news(patched, "0")
    return state


@DBOS.step()
async def run_llm_round(
    record_id: str, number: int, state: dict[str, Any]
) -> dict[str, Any] | None:
    """One LLM round; its text goes out as coarse deltas. None when the run was cancelled."""
    deps = DEPS()
    records = deps.records
    session, record = await _session(record_id, state)
    await records.append(
        record_id, "llm_round_started", {"round": number}, dedupe_key=f"r{number}:started"
    )

    async def generate() -> tuple[RoundOutput, int, list[str]]:
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
        assert output is not None
        return output, flushed, pending

    generated = await records.unless_cancelled(record_id, generate())
    if generated is None:
        return None
    output, flushed, pending = generated
    # The rest of the text, the round's end and the new state: one commit.
    closing = [_delta_event(number, flushed + 1, pending)] if pending else []
    closing.append(
        Announcement(
            "assistant_message_completed",
            {
                "round": number,
                "content": output.text or "",
                "finishReason": "tool_calls" if output.calls else output.finish,
                "toolCalls": [c["function"]["name"] for c in output.calls],
            },
            f"r{number}:completed",
        )
    )
    if number == 0:
        intent = media_turn_intent(session, output, number)
        closing.append(Announcement("media_turn_intent_classified", intent, "intent"))
    expected = (record.data.get("fork") or {}).get("laterRounds")
    if record.data["request"].get("replay") and expected is not None:
        names = [c["function"]["name"] for c in output.calls]
        divergence = diverged(expected, number, output.text or "", names)
        if divergence is not None:
            closing.append(Announcement("replay_diverged", divergence, f"r{number}:replay"))
    new_state = {**state, "usage": session.usage}
    await records.patch(record_id, {"state": new_state}, closing)
    return {
        "output": {"text": output.text, "calls": output.calls, "finish": output.finish},
        "state": new_state,
    }


def _delta_event(number: int, k: int, parts: list[str]) -> Announcement:
    payload = {"round": number, "delta": "".join(parts)}
    return Announcement("assistant_message_delta", payload, f"r{number}:delta:{k}")


async def _delta(record_id: str, number: int, k: int, parts: list[str]) -> None:
    delta = _delta_event(number, k, parts)
    await DEPS().records.append(record_id, delta.type, delta.payload, dedupe_key=delta.dedupe_key)


@DBOS.step()
async def run_tool_batch(
    record_id: str,
    number: int,
    state: dict[str, Any],
    output: dict[str, Any],
    calls: list[dict[str, Any]],
    decided: dict[str, dict[str, Any]],
) -> dict[str, Any] | None:
    """Run the round's hosted calls; None when the run was cancelled meanwhile."""
    deps = DEPS()
    records = deps.records
    session, _ = await _session(record_id, state)
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
        await deps.workflows.cancel_all(
            [summary["workflowId"] for summary in session.workflows], "the chat run was cancelled"
        )
        return None
    artifacts = []
    for call, result in zip(calls, results, strict=True):
        resolved = resolution(call, result)
        artifacts += [r for r in resolved["artifacts"] if r["id"] not in before]
        await records.append(
            record_id, "tool_call_resolved", resolved, dedupe_key=f"{call['id']}:resolved"
        )
    for artifact in artifacts:
        await records.append(
            record_id, "artifact_created", {"artifact": artifact}, dedupe_key=f"{artifact['id']}"
        )
    new_state = _state_of(
        session, state["messages"] + turn_messages(round_output(output), calls, results)
    )

    def change(record: Record) -> tuple[dict[str, Any], list[Announcement]]:
        return {
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
        }, []

    revised = await records.revise(record_id, change)
    if artifacts:
        await _media_news(revised, f"r{number}")
    return {"results": results, "state": new_state}


def resolution(call: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """The `tool_call_resolved` payload of a hosted call (a turn answered in the request tells
    its calls the same way)."""
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
    return {
        "toolCallId": call["id"],
        "toolName": call["function"]["name"],
        "status": _result_status(result),
        "artifacts": refs,
        "mediaUrls": [{"url": r["url"], "mediaType": r["mediaType"]} for r in refs],
        "summary": result.get("message") or result.get("summary"),
        "errorCode": result.get("error_type"),
    }


def _result_status(result: dict[str, Any]) -> str:
    if result.get("error_type") == "USER_CANCELLED":
        return "cancelled"
    return "ok" if result.get("ok") else "err"


@DBOS.step()
async def run_finish(
    record_id: str,
    state: dict[str, Any],
    message: dict[str, Any],
    finish: str,
    ended_by: str | None,
) -> str:
    records = DEPS().records
    final = {"content": message.get("content") or "", "finishReason": finish}
    if message.get("tool_calls"):
        final["pendingToolCalls"] = message["tool_calls"]
    patch: dict[str, Any] = {
        "state": {**state, "messages": [*state["messages"], message]},
        "finalResponse": final,
        "completedAt": now().isoformat(),
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
            "usage": state["usage"],
            **({"toolCalls": message["tool_calls"]} if message.get("tool_calls") else {}),
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


async def _media_news(record: Record | None, when: str) -> None:
    """Tell that the run's media changed: its media context, then its asset manifest."""
    assert record is not None
    records = DEPS().records
    context = {"mediaContext": await public_media(record)}
    await records.append(record.id, "media_context_updated", context, dedupe_key=f"media:{when}")
    manifest = {"assetManifest": await asset_manifest(DEPS().agent.assets, record)}
    await records.append(
        record.id, "asset_manifest_updated", manifest, dedupe_key=f"manifest:{when}"
    )


async def public_media(record: Record) -> dict[str, list[str]]:
    assets = DEPS().agent.assets
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
