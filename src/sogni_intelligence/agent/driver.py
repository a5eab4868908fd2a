"""The order of an agent turn, written once: an LLM round, the calls it made for the client
or for the server, their approval, the batch of hosted calls, and how the turn ends.

Two things run turns: a chat completion, in memory (`agent.loop.AgentLoop.run`), and a durable
chat run, whose rounds and batches are DBOS steps that persist what they did
(`runtime.chat_runs`). Each gives `drive` a `TurnSteps` that does the work its own way; the
sequence and the ending rules live here only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from sogni_intelligence.tools.agent_tools import LOOP_ENDING


@dataclass
class Content:
    text: str


@dataclass
class ToolProgress:
    tool: str
    call_id: str
    state: Literal["started", "running", "finished"]
    ok: bool | None = None
    #: The call's arguments (on `started`) and its result (on `finished`).
    arguments: str | None = None
    result: dict[str, Any] | None = None
    #: On `running`: the job's fraction done, the seconds it has left, what it is doing and
    #: the workflow that runs it.
    progress: float | None = None
    eta_seconds: float | None = None
    detail: str | None = None
    workflow_id: str | None = None

    def progress_payload(self) -> dict[str, Any]:
        """The `tool_call_progress` fields of a `running` tick."""
        return {
            "toolCallId": self.call_id,
            "toolName": self.tool,
            "progress": self.progress,
            "status": "running",
            "etaSeconds": self.eta_seconds,
            "stepLabel": self.detail,
            "workflowId": self.workflow_id,
        }


@dataclass
class Final:
    message: dict[str, Any]
    finish_reason: str
    #: The control tool that ended the turn (`ask_clarifying_question`, `finalize_response`).
    ended_by: str | None = None


@dataclass
class RoundOutput:
    text: str | None
    calls: list[dict[str, Any]]
    finish: str


LoopEvent = Content | ToolProgress | Final


class TurnSteps(Protocol):
    """What a turn needs done, round by round. A step that returns None (or a round that
    yields no `RoundOutput`) means the turn was stopped from outside: a cancelled run."""

    @property
    def client_tools(self) -> list[dict[str, Any]]: ...

    @property
    def ticks(self) -> asyncio.Queue[ToolProgress] | None:
        """Where the running hosted calls' progress arrives, for a turn that streams it while
        the batch runs (None: the batch's progress goes elsewhere)."""
        ...

    def llm_round(self, number: int) -> AsyncIterator[Content | RoundOutput]:
        """The round's text as it comes, then what the model asked for."""
        ...

    async def approve(self, calls: list[dict[str, Any]]) -> dict[str, dict[str, Any]] | None:
        """Results decided without running a call (a cost the user declined), by call id."""
        ...

    async def tool_batch(
        self,
        number: int,
        output: RoundOutput,
        calls: list[dict[str, Any]],
        decided: dict[str, dict[str, Any]],
    ) -> list[dict[str, Any]] | None:
        """Run the hosted calls and add the round to the conversation; their results."""
        ...


async def drive(turn: TurnSteps, max_rounds: int) -> AsyncIterator[LoopEvent]:
    """The turn's events; it ends with a `Final`, unless a step says the turn was stopped."""
    output: RoundOutput | None = None
    succeeded: set[str] = set()  # the tools this turn has run successfully
    number = -1
    while number < max_rounds - 1:
        number += 1
        output = None
        async with aclosing(turn.llm_round(number)) as items:
            async for item in items:
                if isinstance(item, Content):
                    yield item
                else:
                    output = item
        if output is None:
            return
        client, hosted = split_calls(turn.client_tools, output.calls)
        names = {call["function"]["name"] for call in hosted}
        if hosted and not client and names <= succeeded and number < max_rounds - 1:
            # Only tools that already did their work this turn (their results are in the
            # conversation): a small model calls them again round after round. The last round
            # offers no tools, so the model answers from what it has. A tool that failed may
            # be called again.
            number = max_rounds - 2
            continue
        decided = await turn.approve(hosted)
        if decided is None:
            return
        for call in hosted:
            arguments = call["function"].get("arguments")
            yield ToolProgress(call["function"]["name"], call["id"], "started", None, arguments)
        ticks = turn.ticks
        if ticks is None:
            results = await turn.tool_batch(number, output, hosted, decided)
        else:
            batch = asyncio.ensure_future(turn.tool_batch(number, output, hosted, decided))
            try:
                async for tick in _ticks_while(batch, ticks):
                    yield tick
                results = batch.result()
            finally:
                if not batch.done():
                    batch.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await batch
        if results is None:
            return
        for call, result in zip(hosted, results, strict=True):
            name = call["function"]["name"]
            yield ToolProgress(name, call["id"], "finished", result["ok"], result=result)
            if result["ok"]:
                succeeded.add(call["function"]["name"])
        final = outcome(output, client, results)
        if final is not None:
            yield final
            return
    # Still calling tools after the last round (a model that ignores the tool-less round):
    # the turn ends cut short, like a reply cut at max_tokens.
    text = output.text if output is not None else None
    yield Final({"role": "assistant", "content": text or ""}, "length")


async def _ticks_while(
    batch: asyncio.Future[Any], ticks: asyncio.Queue[ToolProgress]
) -> AsyncIterator[ToolProgress]:
    """The ticks that arrive while `batch` runs, then any it left behind."""
    while not batch.done():
        taking = asyncio.ensure_future(ticks.get())
        try:
            await asyncio.wait({batch, taking}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not taking.done():
                taking.cancel()
        if taking.done() and not taking.cancelled():
            yield taking.result()
    while not ticks.empty():
        yield ticks.get_nowait()


def split_calls(
    client_tools: list[dict[str, Any]], calls: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The calls for the client (its own tools) and those run here (anything else)."""
    client_names = {t["function"]["name"] for t in client_tools}
    client = [c for c in calls if c["function"]["name"] in client_names]
    return client, [c for c in calls if c["function"]["name"] not in client_names]


def outcome(
    output: RoundOutput, client: list[dict[str, Any]], results: list[dict[str, Any]]
) -> Final | None:
    """How the turn ends after this round, or None to go on with another round."""
    if not output.calls:
        return Final({"role": "assistant", "content": output.text or ""}, output.finish)
    if client:
        return Final(
            {"role": "assistant", "content": output.text, "tool_calls": client}, "tool_calls"
        )
    ending = next((r for r in results if r["ok"] and r["tool"] in LOOP_ENDING), None)
    if ending is not None:
        answer = ending.get("question") or ending.get("summary") or output.text or ""
        return Final({"role": "assistant", "content": answer}, "stop", ending["tool"])
    return None
