"""The agent loop: an LLM round, the hosted tool calls it made run here (independent calls at
once), their results appended as `tool` messages, the next round, until the model answers,
calls a client tool, ends the turn with a control tool, or the round limit is reached.

Media tools run as durable one-step workflows seeded with the session's media context, so
their indices match the conversation's; the loop waits for each up to a limit and otherwise
tells the model the job is still in progress. The loop yields events and knows no HTTP; the
order of rounds and batches is `agent.driver`'s, which a durable chat run drives too, with
this loop's `round` and `run_calls` inside its steps.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Protocol

from sogni_intelligence.agent.driver import Content, LoopEvent, RoundOutput, ToolProgress, drive
from sogni_intelligence.agent.repetition import RepetitionGuard
from sogni_intelligence.config import DEFAULT_AGENT_MAX_TOKENS_PER_ROUND, Settings
from sogni_intelligence.errors import ServiceError
from sogni_intelligence.llm.protocol import (
    ChatEngine,
    ChatRequest,
    EngineError,
    merge_tool_call,
)
from sogni_intelligence.llm.structured import CALL_FORM, new_call_id
from sogni_intelligence.llm.text_calls import CallReader, Reading, Unread
from sogni_intelligence.media.store import AssetStore
from sogni_intelligence.store.usage import UsageStore
from sogni_intelligence.tools.base import (
    Tool,
    ToolContext,
    ToolError,
    ToolOutput,
    ToolServices,
    envelope,
    execute,
    failure,
)
from sogni_intelligence.tools.call_schema import call_problems, offered_definition
from sogni_intelligence.tools.media_context import MediaContext

WORKFLOW_PATH = "/v1/creative-agent/workflows"
CHILD_ENDPOINT = "agent.tool_call"
_ENDED = ("completed", "partial_failure", "failed", "cancelled")


class WorkflowRecord(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def status(self) -> str: ...


class WorkflowEvent(Protocol):
    @property
    def type(self) -> str: ...

    @property
    def payload(self) -> dict[str, Any]: ...


class WorkflowRecords(Protocol):
    """A workflow's record and event log, as the loop reads them (runtime's `RecordStore`)."""

    async def get(self, record_id: str) -> WorkflowRecord | None: ...

    async def events(self, record_id: str) -> Sequence[WorkflowEvent]: ...

    def follow(self, record_id: str) -> AsyncIterator[WorkflowEvent | None]: ...


class MediaWorkflows(Protocol):
    """What the loop needs of the durable layer to run a media tool as a one-step workflow:
    runtime's `WorkflowRuntime`, passed in where the loop is built."""

    @property
    def records(self) -> WorkflowRecords: ...

    async def start(
        self,
        owner: str,
        raw_input: dict[str, Any],
        media_references: list[dict[str, Any]] | None,
        *,
        options: dict[str, Any] | None = None,
        media_context: dict[str, dict[str, list[str]]] | None = None,
        idempotency: tuple[str, Any] | None = None,
        confirm_cost: bool = False,
        endpoint: str = ...,
    ) -> tuple[WorkflowRecord, bool]: ...


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
    #: Where the turn comes from, kept on the workflows it starts.
    source: str = "chat.completions"
    #: How the turn's work is billed (`tokenType`, `billingMode`, `appSource`), also kept on
    #: the workflows it starts.
    billing: dict[str, Any] = field(default_factory=dict)
    #: Set on durable turns: makes the child workflow of a repeated call the same one.
    key: str | None = None
    on_workflow: Callable[[str, str, dict[str, Any]], Awaitable[None]] | None = None
    #: Told each progress tick of a hosted call's workflow while the turn waits for it.
    on_progress: Callable[[ToolProgress], Awaitable[None]] | None = None
    #: Capacity-unit ceiling of the turn's tool calls, and what they have taken so far.
    budget: float | None = None
    spent: float = 0.0
    #: The request's content filter switch, kept on the workflows the turn starts.
    safe_content_filter: bool = True
    #: Whether a call the model wrote unreadably was already sent back to it this turn.
    unread_retried: bool = False
    tool_results: list[dict[str, Any]] = field(default_factory=list)
    workflows: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] = field(
        default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    )


@dataclass(frozen=True)
class LoopLimits:
    max_rounds: int = 8
    workflow_wait_s: float = 300.0
    #: Tokens one LLM round may generate; a request's own lower `max_tokens` wins.
    max_tokens_per_round: int = DEFAULT_AGENT_MAX_TOKENS_PER_ROUND

    @classmethod
    def from_settings(cls, settings: Settings) -> LoopLimits:
        return cls(
            settings.agent_max_rounds,
            settings.agent_workflow_wait_s,
            settings.agent_max_tokens_per_round,
        )


class AgentLoop:
    def __init__(
        self,
        workflows: MediaWorkflows,
        assets: AssetStore,
        services: ToolServices,
        public_base_url: str,
        limits: LoopLimits,
        usage: UsageStore | None = None,
    ) -> None:
        self.workflows = workflows
        self.assets = assets
        self.services = services
        self.base_url = public_base_url.rstrip("/")
        self.limits = limits
        #: Counts each owner's tokens against its tokens-per-minute limit.
        self.usage = usage

    async def run(self, session: Session) -> AsyncIterator[LoopEvent]:
        """The turn, in memory: its events as they come (see `agent.driver`)."""
        async with aclosing(drive(_InMemoryTurn(self, session), self.limits.max_rounds)) as events:
            async for event in events:
                yield event

    async def round(
        self, session: Session, messages: list[dict[str, Any]], number: int
    ) -> AsyncIterator[Content | RoundOutput]:
        """One LLM round: its text as it comes, then what it asked for."""
        last = number == self.limits.max_rounds - 1
        request = self._round_request(session, messages, number, last)
        content: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        finish = "stop"
        guard = RepetitionGuard()
        # Calls written as text (by a template without tools, or an upstream model's habit)
        # are held back from the answer and read when the round ends.
        names = {t["function"]["name"] for t in request.get("tools") or []}
        json_answer = (request.get("response_format") or {}).get("type", "text") != "text"
        calls_allowed = names and request.get("tool_choice") != "none" and not json_answer
        reader = CallReader(names) if calls_allowed else None
        looping = False
        pieces = 0
        spent = session.usage["total_tokens"]
        try:
            # Closed explicitly, so a turn abandoned mid-round (or a round cut short below)
            # frees its slot at once.
            async with aclosing(session.engine.stream(request)) as chunks:
                async for chunk in chunks:
                    _add_usage(session.usage, chunk.get("usage"))
                    for choice in chunk.get("choices") or []:
                        delta = choice.get("delta") or {}
                        text = delta.get("content") or ""
                        keep = None
                        if text:
                            pieces += 1
                            keep = guard.feed(text)
                        visible = text[:keep]
                        if visible and reader is not None:
                            visible = reader.feed(visible)
                        if visible:
                            content.append(visible)
                            yield Content(visible)
                        if keep is not None:
                            looping = True
                            break
                        for fragment in delta.get("tool_calls") or []:
                            merge_tool_call(calls, fragment)
                        finish = choice.get("finish_reason") or finish
                    if looping:
                        # The text repeats itself: stop the generation, as max_tokens would.
                        # The engine's usage comes with its last chunk, never read now: count
                        # the pieces (a token each from llama.cpp and OpenAI-style servers);
                        # this round's prompt goes uncounted.
                        _add_usage(
                            session.usage, {"completion_tokens": pieces, "total_tokens": pieces}
                        )
                        finish = "length"
                        break
        except EngineError as exc:
            # Tool results filled the context: end the turn with what it has, like a reply
            # cut at max_tokens. The first round's overflow is the request's own fault.
            if number == 0 or exc.code != "context_length_exceeded":
                raise
            yield RoundOutput("".join(content) or None, [], "length")
            return
        if self.usage is not None:
            await self.usage.add_tokens(session.owner, session.usage["total_tokens"] - spent)
        # A call still being written when a looping round was cut is not a call.
        made = [] if looping else [calls[i] for i in sorted(calls)]
        reading = reader.finish() if reader is not None else Reading()
        if reading.calls and not made and not looping:
            made = [_text_call(name, arguments) for name, arguments in reading.calls]
            finish = "tool_calls"
        elif reading.unread and not made and not looping and not session.unread_retried:
            # Sent back once as a failed call, so the model sees why and can write it again.
            session.unread_retried = True
            made = [_unread_call(reading.unread, names)]
            finish = "tool_calls"
        else:
            rest = reading.unread.text if reading.unread else reading.text
            if rest:
                content.append(rest)
                yield Content(rest)
        yield RoundOutput("".join(content) or None, made, finish)

    async def run_calls(
        self,
        session: Session,
        calls: list[dict[str, Any]],
        number: int,
        decided: dict[str, dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Run hosted calls at once; `decided` holds results given without running (a call
        whose cost the user declined)."""
        decided = decided or {}
        return list(
            await asyncio.gather(
                *(self._run_call(session, call, number, decided.get(call["id"])) for call in calls)
            )
        )

    def _round_request(
        self, session: Session, messages: list[dict[str, Any]], number: int, last: bool
    ) -> ChatRequest:
        request: ChatRequest = {**session.request, "messages": messages}
        bound = self.limits.max_tokens_per_round
        request["max_tokens"] = min(request.get("max_tokens") or bound, bound)
        if last:  # the last round must answer in words
            return request
        # A forced choice applies to the first round only, or the loop would never end.
        choice = session.tool_choice if number == 0 else "auto"
        tools = session.client_tools + _offered(session, choice, self.services)
        if tools:
            request["tools"] = tools
            request["tool_choice"] = choice
        return request

    async def _run_call(
        self,
        session: Session,
        call: dict[str, Any],
        round_number: int,
        decided: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        name = call["function"]["name"]
        arguments: Any = None
        workflow: dict[str, Any] | None = None
        try:
            arguments = json.loads(call["function"].get("arguments") or "{}")
            if not isinstance(arguments, dict):
                raise ValueError
        except ValueError:
            message = f"the arguments must be one JSON object; write the call as {CALL_FORM}"
            result = failure(name, ToolError("PARAMETER_INVALID", message))
        else:
            tool = session.hosted.get(name)
            over_budget = tool is not None and _over_budget(session, tool, arguments)
            if decided is not None:
                result = decided
            elif tool is None:
                message = (
                    f"there is no tool named {name!r}; the tools are {', '.join(session.hosted)}"
                )
                result = failure(name, ToolError("PARAMETER_INVALID", message))
            elif problems := call_problems(tool, arguments, session.media):
                result = failure(name, ToolError("PARAMETER_INVALID", "; ".join(problems)))
            elif over_budget:
                message = "this call would take the turn above its capacity-unit ceiling"
                result = failure(name, ToolError("COST_LIMIT_EXCEEDED", message))
            elif tool.kind == "media":
                result, workflow = await self._as_workflow(session, tool, arguments, call["id"])
            else:
                ctx = ToolContext(
                    session.owner,
                    session.media,
                    self.assets,
                    services=self.services,
                    safe_content_filter=session.safe_content_filter,
                )
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
        """Run a media tool as a durable one-step workflow (a template tool as its template's
        workflow) and wait for it (up to a limit)."""
        plan: dict[str, Any] = {
            "title": f"{tool.name} (chat tool call)",
            "steps": [{"id": "call", "toolName": tool.name, "arguments": arguments}],
        }
        references: list[dict[str, Any]] = []
        options = {
            **session.billing,
            "source": session.source,
            "toolCallId": call_id,
            "safeContentFilter": session.safe_content_filter,
        }
        try:
            if tool.workflow is not None:
                start = tool.workflow(arguments)
                plan, references = start["input"], start["media_references"]
                options.update(start["options"])
            record, _ = await self.workflows.start(
                session.owner,
                plan,
                references,
                options=options,
                media_context=session.media.asset_ids(),
                # A durable turn that repeats this call after a crash gets the same workflow.
                idempotency=None if session.key is None else (f"{session.key}:{call_id}", plan),
                confirm_cost=True,
                endpoint=CHILD_ENDPOINT,
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
        if session.on_workflow is not None:
            await session.on_workflow(call_id, tool.name, summary)
        final = await self._wait(record.id, session, tool.name, call_id)
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

    async def _wait(
        self, record_id: str, session: Session, tool: str, call_id: str
    ) -> WorkflowRecord | None:
        """The workflow once it ends or waits (None past the wait limit); its step's progress
        ticks go to the session on the way."""
        records = self.workflows.records
        try:
            async with asyncio.timeout(self.limits.workflow_wait_s):
                async for event in records.follow(record_id):
                    if event is None:
                        continue
                    if event.type in (
                        "workflow_completed",
                        "workflow_failed",
                        "workflow_cancelled",
                        "workflow_waiting_for_user",
                        "workflow_user_input_required",
                    ):
                        break
                    if (
                        event.type == "workflow_progress"
                        and "stepId" in event.payload
                        and session.on_progress is not None
                    ):
                        payload = event.payload
                        tick = ToolProgress(
                            tool,
                            call_id,
                            "running",
                            progress=payload["progress"],
                            eta_seconds=payload.get("etaSeconds"),
                            detail=payload.get("message"),
                            workflow_id=record_id,
                        )
                        await session.on_progress(tick)
        except TimeoutError:
            return None
        return await records.get(record_id)

    async def _workflow_result(
        self, session: Session, tool: str, record: WorkflowRecord
    ) -> dict[str, Any]:
        events = await self.workflows.records.events(record.id)
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


class _InMemoryTurn:
    """The steps of a chat completion's turn: nothing to persist, no one to ask for approval;
    the conversation grows in a local list."""

    def __init__(self, loop: AgentLoop, session: Session) -> None:
        self.loop = loop
        self.session = session
        self.client_tools = session.client_tools
        self.messages = list(session.request["messages"])
        self.ticks: asyncio.Queue[ToolProgress] = asyncio.Queue()

        async def tell(tick: ToolProgress) -> None:
            self.ticks.put_nowait(tick)

        session.on_progress = tell

    def llm_round(self, number: int) -> AsyncIterator[Content | RoundOutput]:
        return self.loop.round(self.session, self.messages, number)

    async def approve(self, calls: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {}

    async def tool_batch(
        self,
        number: int,
        output: RoundOutput,
        calls: list[dict[str, Any]],
        decided: dict[str, dict[str, Any]],
    ) -> list[dict[str, Any]]:
        results = await self.loop.run_calls(self.session, calls, number, decided)
        self.messages += turn_messages(output, calls, results)
        return results


def turn_messages(
    output: RoundOutput, hosted: list[dict[str, Any]], results: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """What a round adds to the conversation: the assistant's calls and the tools' answers."""
    if not hosted:
        return []
    return [
        {"role": "assistant", "content": output.text, "tool_calls": hosted},
        *(
            {
                "role": "tool",
                "tool_call_id": call["id"],
                "name": call["function"]["name"],
                "content": json.dumps(
                    for_the_model(result), separators=(",", ":"), ensure_ascii=False
                ),
            }
            for call, result in zip(hosted, results, strict=True)
        ),
    ]


#: Result keys the model does not need (long signed URLs, per-asset metadata): the indices
#: are how it refers to media, and the client gets everything in `sogni_tool_results`.
_CLIENT_ONLY_KEYS = frozenset({"output_assets", "urls", "lastFrameUrl", "lastFrameUrls"})


def for_the_model(result: dict[str, Any]) -> dict[str, Any]:
    """A tool result as the model reads it: small, so several rounds fit a small context."""
    compact = {k: v for k, v in result.items() if k not in _CLIENT_ONLY_KEYS}
    assets = result.get("output_assets") or []
    if assets:
        compact["outputs"] = [
            {k: a[k] for k in ("type", "width", "height", "duration_seconds") if a.get(k)}
            for a in assets
        ]
    return compact


def _text_call(name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": new_call_id(),
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def _unread_call(unread: Unread, names: set[str]) -> dict[str, Any]:
    """The call an unreadable one becomes: its name (when it gave one) and what it wrote, which
    `_run_call` answers with the form a call must take, or with the tools there are."""
    if unread.name is not None and unread.name not in names:
        return _text_call(unread.name, "{}")
    return _text_call(unread.name or "unreadable_call", unread.text)


def _offered(session: Session, choice: Any, services: ToolServices) -> list[dict[str, Any]]:
    """The hosted tools as this round may call them (see `tools.call_schema`). A tool the
    request forces stays offered even when it cannot run here, so that its call is answered
    with what is missing rather than the choice failing; one the operator bound to ComfyUI
    runs here."""
    forced = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    offered = []
    for tool in session.hosted.values():
        definition = offered_definition(
            services.bound_tools.get(tool.name, tool), session.media, services
        )
        if definition is None and tool.name == forced:
            definition = tool.definition()
        if definition is not None:
            offered.append(definition)
    return offered


def _over_budget(session: Session, tool: Tool, arguments: dict[str, Any]) -> bool:
    if session.budget is None:
        return False
    try:
        cost = tool.cost(tool.args.model_validate(arguments))
    except ValueError:
        return False  # the tool itself reports the bad arguments
    if session.spent + cost > session.budget:
        return True
    session.spent += cost
    return False


def _add_usage(total: dict[str, int], usage: dict[str, Any] | None) -> None:
    for key in total:
        total[key] += int((usage or {}).get(key) or 0)
