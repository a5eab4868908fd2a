"""The order of a turn (`agent.driver.drive`) with scripted steps: no model, no tools."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from sogni_intelligence.agent.driver import Content, Final, RoundOutput, ToolProgress, drive


def _call(number: int, arguments: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(arguments)
    return {"id": f"c{number}", "type": "function", "function": {"name": "draw", "arguments": text}}


class Scripted:
    """Rounds that answer from a script by round number; every batch succeeds."""

    def __init__(self, script: dict[int, RoundOutput]) -> None:
        self.client_tools: list[dict[str, Any]] = []
        self.ticks: asyncio.Queue[ToolProgress] | None = None
        self.script = script
        self.rounds: list[int] = []
        self.batches: list[list[str]] = []
        self.failing: set[str] = set()  # ids of the calls whose result is ok: false

    async def llm_round(self, number: int) -> AsyncIterator[Content | RoundOutput]:
        self.rounds.append(number)
        yield self.script.get(number, RoundOutput("Here it is.", [], "stop"))

    async def approve(self, calls: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {}

    async def tool_batch(
        self, number: int, output: RoundOutput, calls: list[dict[str, Any]], decided: dict
    ) -> list[dict[str, Any]]:
        self.batches.append([call["id"] for call in calls])
        return [{"ok": call["id"] not in self.failing, "tool": "draw"} for call in calls]


async def _events(turn: Scripted, max_rounds: int = 8) -> list[Any]:
    return [event async for event in drive(turn, max_rounds)]


async def test_a_tool_that_did_its_work_is_not_run_again_and_the_last_round_answers() -> None:
    """Round 1 calls the tool that succeeded in round 0 (other arguments or not): it is not
    run; the turn jumps to its last, tool-less round."""
    turn = Scripted(
        {
            0: RoundOutput(None, [_call(0, {"prompt": "a fox", "n": 1})], "tool_calls"),
            1: RoundOutput(None, [_call(1, {"n": 1, "prompt": "a fox"})], "tool_calls"),
        }
    )
    events = await _events(turn)
    assert turn.rounds == [0, 1, 7] and [b for b in turn.batches if b] == [["c0"]]
    final = events[-1]
    assert isinstance(final, Final) and final.message["content"] == "Here it is."


async def test_a_tool_that_failed_may_be_called_again() -> None:
    turn = Scripted(
        {
            0: RoundOutput(None, [_call(0, {"prompt": "a fox", "index": 3})], "tool_calls"),
            1: RoundOutput(None, [_call(1, {"prompt": "a fox"})], "tool_calls"),
        }
    )
    turn.failing = {"c0"}
    await _events(turn)
    assert turn.rounds == [0, 1, 2] and [b for b in turn.batches if b] == [["c0"], ["c1"]]


class Ticking(Scripted):
    """A batch that reports progress while it runs, as a chat completion's workflows do."""

    def __init__(self, script: dict[int, RoundOutput], hold_s: float = 0.0) -> None:
        super().__init__(script)
        self.ticks = asyncio.Queue()
        self.hold_s = hold_s  # how long the batch goes on after its last tick
        self.cancelled = False

    async def tool_batch(
        self, number: int, output: RoundOutput, calls: list[dict[str, Any]], decided: dict
    ) -> list[dict[str, Any]]:
        assert self.ticks is not None
        try:
            for fraction in (0.25, 0.5, 0.75) if calls else ():
                await asyncio.sleep(0.01)
                self.ticks.put_nowait(ToolProgress("draw", "c0", "running", progress=fraction))
            await asyncio.sleep(self.hold_s)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return await super().tool_batch(number, output, calls, decided)


async def test_progress_ticks_stream_between_a_call_starting_and_finishing() -> None:
    turn = Ticking({0: RoundOutput(None, [_call(0, {"prompt": "a fox"})], "tool_calls")})
    events = await _events(turn)
    states = [(e.state, e.progress) for e in events if isinstance(e, ToolProgress)]
    assert states == [
        ("started", None),
        ("running", 0.25),
        ("running", 0.5),
        ("running", 0.75),
        ("finished", None),
    ]
    assert isinstance(events[-1], Final)


async def test_closing_the_turn_mid_batch_cancels_the_batch() -> None:
    turn = Ticking({0: RoundOutput(None, [_call(0, {"prompt": "a fox"})], "tool_calls")}, 5.0)
    events = drive(turn, 8)
    async for event in events:
        if isinstance(event, ToolProgress) and event.state == "running":
            break
    await asyncio.wait_for(events.aclose(), 1)
    assert turn.cancelled
