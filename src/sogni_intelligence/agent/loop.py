"""The agent loop: an LLM round, the hosted tool calls it made run here (independent calls at
once), their results appended as `tool` messages, the next round, until the model answers,
calls a client tool, ends the turn with a control tool, or the round limit is reached.

Media tools run as durable one-step workflows seeded with the session's media context, so
their indices match the conversation's; the loop waits for each up to a limit and otherwise
tells the model the job is still in progress. The loop yields events and knows no HTTP, so a
chat completion and a durable chat run drive the same code.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from sogni_intelligence.errors import ServiceError
from sogni_intelligence.llm.protocol import ChatEngine, ChatRequest, merge_tool_call
from sogni_intelligence.media.store import AssetStore
from sogni_intelligence.runtime.queues import queue_for
from sogni_intelligence.runtime.records import Record
from sogni_intelligence.runtime.workflows import WorkflowRuntime
from sogni_intelligence.tools.agent_tools import LOOP_ENDING
from sogni_intelligence.tools.base import (
    Tool,
    ToolContext,
    ToolError,
    ToolOutput,
    envelope,
    execute,
    failure,
)
from sogni_intelligence.tools.media_context import MediaContext

WORKFLOW_PATH = "/v1/creative-agent/workflows"
_ENDED = ("completed", "partial_failure", "failed", "cancelled")


@dataclass
class Session:
    """One turn's state: what the loop works on and what it has produced so far."""

    owner: str
    engine: ChatEngine
    request: ChatRequest  # messages and sampling, without tools
    client_tools: list[dict[str, Any]]
    hosted: dict[str, Tool]
    tool_choice: Any
    media: MediaContext
    tool_results: list[dict[str, Any]] = field(default_factory=list)
    workflows: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] = field(
        default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    )


@dataclass
class Content:
    text: str


@dataclass
class ToolProgress:
    tool: str
    call_id: str
    state: Literal["started", "finished"]
    ok: bool | None = None


@dataclass
class Final:
    message: dict[str, Any]
    finish_reason: str


LoopEvent = Content | ToolProgress | Final


@dataclass(frozen=True)
class LoopLimits:
    max_rounds: int = 8
    workflow_wait_s: float = 300.0


class AgentLoop:
    def __init__(
        self,
        workflows: WorkflowRuntime,
        assets: AssetStore,
        services: dict[str, Any],
        public_base_url: str,
        limits: LoopLimits,
    ) -> None:
        self.workflows = workflows
        self.assets = assets
        self.services = services
        self.base_url = public_base_url.rstrip("/")
        self.limits = limits

    async def run(self, session: Session) -> AsyncIterator[LoopEvent]:
        messages = list(session.request["messages"])
        for round_number in range(self.limits.max_rounds):
            last = round_number == self.limits.max_rounds - 1
            request = self._round_request(session, messages, round_number, last)
            content: list[str] = []
            calls: dict[int, dict[str, Any]] = {}
            finish = "stop"
            async for chunk in session.engine.stream(request):
                _add_usage(session.usage, chunk.get("usage"))
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    if delta.get("content"):
                        content.append(delta["content"])
                        yield Content(delta["content"])
                    for fragment in delta.get("tool_calls") or []:
                        merge_tool_call(calls, fragment)
                    finish = choice.get("finish_reason") or finish
            text = "".join(content) or None
            ordered = [calls[i] for i in sorted(calls)]
            if not ordered:
                yield Final({"role": "assistant", "content": text or ""}, finish)
                return
            client_names = {t["function"]["name"] for t in session.client_tools}
            client = [c for c in ordered if c["function"]["name"] in client_names]
            hosted = [c for c in ordered if c["function"]["name"] not in client_names]
            for call in hosted:
                yield ToolProgress(call["function"]["name"], call["id"], "started")
            results = await asyncio.gather(
                *(self._run_call(session, call, round_number) for call in hosted)
            )
            for call, result in zip(hosted, results, strict=True):
                yield ToolProgress(call["function"]["name"], call["id"], "finished", result["ok"])
            messages.append({"role": "assistant", "content": text, "tool_calls": hosted})
            messages += [
                {
                    "role": "tool",
                    "tool_call_id": call["id"],
                    "name": call["function"]["name"],
                    "content": json.dumps(result, separators=(",", ":"), ensure_ascii=False),
                }
                for call, result in zip(hosted, results, strict=True)
            ]
            ending = next((r for r in results if r["ok"] and r["tool"] in LOOP_ENDING), None)
            if client:
                message = {"role": "assistant", "content": text, "tool_calls": client}
                yield Final(message, "tool_calls")
                return
            if ending is not None:
                answer = ending.get("question") or ending.get("summary") or text or ""
                yield Final({"role": "assistant", "content": answer}, "stop")
                return

    def _round_request(
        self, session: Session, messages: list[dict[str, Any]], number: int, last: bool
    ) -> ChatRequest:
        request: ChatRequest = {**session.request, "messages": messages}
        if last:  # the last round must answer in words
            return request
        tools = session.client_tools + [t.definition() for t in session.hosted.values()]
        if tools:
            request["tools"] = tools
            # A forced choice applies to the first round only, or the loop would never end.
            request["tool_choice"] = session.tool_choice if number == 0 else "auto"
        return request

    async def _run_call(
        self, session: Session, call: dict[str, Any], round_number: int
    ) -> dict[str, Any]:
        name = call["function"]["name"]
        arguments: Any = None
        workflow: dict[str, Any] | None = None
        try:
            arguments = json.loads(call["function"].get("arguments") or "{}")
            if not isinstance(arguments, dict):
                raise ValueError
        except ValueError:
            result = failure(name, ToolError("PARAMETER_INVALID", "arguments must be an object"))
        else:
            tool = session.hosted.get(name)
            if tool is None:
                message = f"there is no tool named {name!r}"
                result = failure(name, ToolError("PARAMETER_INVALID", message))
            elif _is_media_tool(name):
                result, workflow = await self._as_workflow(session, tool, arguments, call["id"])
            else:
                ctx = ToolContext(session.owner, session.media, self.assets, services=self.services)
                result = await execute(tool, arguments, ctx)
        session.tool_results.append(
            {
                **result,
                "toolCallId": call["id"],
                "toolName": name,
                "name": name,
                "arguments": arguments,
                "round": round_number,
                "url": (result.get("urls") or [None])[0],
                "workflowId": workflow["workflowId"] if workflow else None,
            }
        )
        return result

    async def _as_workflow(
        self, session: Session, tool: Tool, arguments: dict[str, Any], call_id: str
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Run a media tool as a durable one-step workflow and wait for it (up to a limit)."""
        plan = {
            "title": f"{tool.name} (chat tool call)",
            "steps": [{"id": "call", "toolName": tool.name, "arguments": arguments}],
        }
        try:
            record, _ = await self.workflows.start(
                session.owner,
                plan,
                [],
                options={"source": "chat.completions", "toolCallId": call_id},
                media_context=session.media.asset_ids(),
                confirm_cost=True,
            )
        except ServiceError as exc:
            return failure(tool.name, ToolError("PARAMETER_INVALID", exc.message)), None
        url = f"{self.base_url}{WORKFLOW_PATH}/{record.id}"
        summary = {
            "workflowId": record.id,
            "status": record.status,
            "url": url,
            "eventsUrl": f"{url}/events",
            "streamUrl": f"{url}/events/stream",
        }
        session.workflows.append(summary)
        final = await self._wait(record.id)
        if final is None:
            summary["status"] = "running"
            return (
                {
                    "ok": True,
                    "success": True,
                    "tool": tool.name,
                    "status": "in_progress",
                    "workflow_id": record.id,
                    "message": "The job is still running; its workflow reports progress.",
                },
                summary,
            )
        summary["status"] = final.status
        return await self._workflow_result(session, tool.name, final), summary

    async def _wait(self, record_id: str) -> Record | None:
        records = self.workflows.deps.records
        try:
            async with asyncio.timeout(self.limits.workflow_wait_s):
                async for event in records.follow(record_id):
                    if event is not None and event.type in (
                        "workflow_completed",
                        "workflow_failed",
                        "workflow_cancelled",
                        "workflow_waiting_for_user",
                    ):
                        break
        except TimeoutError:
            return None
        return await records.get(record_id)

    async def _workflow_result(self, session: Session, tool: str, record: Record) -> dict[str, Any]:
        events = await self.workflows.deps.records.events(record.id)
        done = next((e for e in events if e.type == "step_completed"), None)
        if record.status not in _ENDED[:2] or done is None:
            failed = next((e for e in events if e.type == "step_failed"), None)
            error = (failed.payload.get("error") if failed else None) or {}
            outcome = failure(
                tool,
                ToolError(
                    error.get(
                        "errorType",
                        "USER_CANCELLED" if record.status == "cancelled" else "UNKNOWN_ERROR",
                    ),
                    error.get("message") or f"the workflow ended {record.status}",
                ),
            )
            return {**outcome, "workflow_id": record.id}
        assets = [await self.assets.get(i, session.owner) for i in done.payload["assetIds"]]
        output = ToolOutput(
            [a for a in assets if a is not None],
            model=done.payload.get("model"),
            backend=done.payload.get("backend"),
            warnings=done.payload.get("warnings") or [],
            extra={**(done.payload.get("output") or {}), "workflow_id": record.id},
        )
        ctx = ToolContext(session.owner, session.media, self.assets, services=self.services)
        return envelope(tool, output, ctx)


def _is_media_tool(name: str) -> bool:
    try:
        queue_for(name)
    except KeyError:
        return False
    return True


def _add_usage(total: dict[str, int], usage: dict[str, Any] | None) -> None:
    for key in total:
        total[key] += int((usage or {}).get(key) or 0)
