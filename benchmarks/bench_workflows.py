"""Benchmark of the durable workflow runtime (DBOS on SQLite in a temporary directory), each
number next to a baseline measured in the same run:

* step overhead: a chain of N cheap `generate_image` steps (256x256, each one bound to the
  previous image) run as a creative workflow, less the time spent inside those tools (timed
  in the same run), against a DBOS workflow of N trivial `@DBOS.step()`s. Per-step costs are
  slopes between a short and a long chain, so the fixed cost of a workflow (start, finish) is
  left out; and the time from a workflow's start to its first step's start (at most 50 ms);
* event delivery: 100 `RecordStore.follow()` subscribers on one record while 50 events are
  appended; latency from the call to `append` to each subscriber's receipt;
* recovery: a worker process (tests/integration/runtime/crash_runner.py) is SIGKILLed while its
  workflow's second step runs; a new process launches DBOS, which recovers it. Measured from
  the start of `durable.launch` to the first tool call running again and to the first new
  event of the workflow (that one includes re-running the interrupted step, shown apart).

    .venv/bin/python benchmarks/bench_workflows.py [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from dbos import DBOS

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "tests" / "integration" / "runtime" / "crash_runner.py"
sys.path.insert(0, str(RUNNER.parent))

from crash_runner import open_runtime, settings_for  # noqa: E402

from sogni_intelligence.runtime import durable, workflow_steps  # noqa: E402
from sogni_intelligence.runtime.workflows import WorkflowRuntime  # noqa: E402
from sogni_intelligence.store.records import RecordStore  # noqa: E402
from sogni_intelligence.tools.base import ToolContext, execute  # noqa: E402
from sogni_intelligence.tools.catalog import CATALOG  # noqa: E402
from sogni_intelligence.tools.media_context import MediaContext  # noqa: E402

OWNER = "bench"
TERMINAL_EVENTS = ("workflow_completed", "workflow_failed", "workflow_cancelled")
MAX_STEP_START_MS = 50.0


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


# --- (a) per-step overhead --------------------------------------------------------------------


@DBOS.step()
async def plain_step(i: int) -> int:
    return i + 1


@DBOS.workflow()
async def plain_workflow(n: int) -> int:
    total = 0
    for i in range(n):
        total += await plain_step(i)
    return total


def _image_args(i: int) -> dict[str, Any]:
    return {"prompt": f"bench step {i} a harbour at noon", "width": 256, "height": 256, "seed": i}


def _chain_plan(n: int) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [
        {"id": "s0", "toolName": "generate_image", "arguments": _image_args(0)}
    ]
    for i in range(1, n):
        binding = {
            "sourceStepId": f"s{i - 1}",
            "targetArgument": "sourceImageIndex",
            "transform": "image_index",
            "required": True,
        }
        steps.append(
            {
                "id": f"s{i}",
                "toolName": "generate_image",
                "arguments": _image_args(i),
                "dependsOn": [binding],
            }
        )
    return {"title": f"bench chain of {n}", "steps": steps}


class _ToolClock:
    """Adds up the time spent inside the tools that workflow steps call, so that a chain's
    overhead is its wall time minus its own tools' time, measured in the same run (the tool
    time of a separate run differs by more than the overhead itself)."""

    def __init__(self) -> None:
        self.spent = 0.0
        self._execute = workflow_steps.execute

    async def _timed(self, *args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return await self._execute(*args, **kwargs)
        finally:
            self.spent += time.perf_counter() - began

    def __enter__(self) -> _ToolClock:
        workflow_steps.execute = self._timed  # type: ignore[assignment]
        return self

    def __exit__(self, *_: object) -> None:
        workflow_steps.execute = self._execute  # type: ignore[assignment]


async def _run_ours(runtime: WorkflowRuntime, n: int, step_starts: list[float]) -> float:
    """The chain's wall time less the time inside its tools; appends to `step_starts` the
    milliseconds from the workflow's start to its first step's start."""
    with _ToolClock() as tools:
        return await _run_chain(runtime, n, step_starts) - tools.spent


async def _run_chain(runtime: WorkflowRuntime, n: int, step_starts: list[float]) -> float:
    started = time.perf_counter()
    record, _ = await runtime.start(OWNER, _chain_plan(n), [])
    at: dict[str, datetime] = {}
    async for event in runtime.deps.records.follow(record.id):
        if event is None:
            continue
        at.setdefault(event.type, event.at)
        if event.type in TERMINAL_EVENTS:
            assert event.type == "workflow_completed", event
            break
    wall = time.perf_counter() - started
    step_starts.append((at["step_started"] - at["workflow_started"]).total_seconds() * 1000)
    return wall


async def _run_plain(n: int) -> float:
    started = time.perf_counter()
    handle = await DBOS.start_workflow_async(plain_workflow, n)
    assert await handle.get_result() == n * (n + 1) // 2
    return time.perf_counter() - started


async def _run_tools(runtime: WorkflowRuntime, n: int) -> float:
    """The chain's tool calls made directly, each on the previous call's image."""
    ctx = ToolContext(owner=OWNER, media=MediaContext(), store=runtime.deps.assets)
    started = time.perf_counter()
    for i in range(n):
        args = _image_args(i) | ({"sourceImageIndex": i - 1} if i else {})
        result = await execute(CATALOG["generate_image"], args, ctx)
        assert result["ok"], result
        ctx.media.add_generated(
            [await ctx.store.get(a["asset_id"]) for a in result["output_assets"]]
        )
    return time.perf_counter() - started


async def bench_steps(runtime: WorkflowRuntime, short: int, long: int, runs: int) -> dict[str, Any]:
    timings: dict[str, dict[int, list[float]]] = {"ours": {}, "plain": {}, "tools": {}}
    step_starts: list[float] = []
    await _run_plain(2)  # warm up both paths
    await _run_ours(runtime, 2, [])
    for _ in range(runs):
        for n in (short, long):
            timings["plain"].setdefault(n, []).append(await _run_plain(n))
            timings["ours"].setdefault(n, []).append(await _run_ours(runtime, n, step_starts))
            timings["tools"].setdefault(n, []).append(await _run_tools(runtime, n))

    def slope(kind: str) -> float:
        medians = {n: statistics.median(v) for n, v in timings[kind].items()}
        return (medians[long] - medians[short]) / (long - short) * 1000

    tool_ms = slope("tools")
    ours_ms = slope("ours")
    plain_ms = slope("plain")
    return {
        "chain_lengths": [short, long],
        "runs": runs,
        "ours_ms_per_step": ours_ms,
        "tool_ms_per_step": tool_ms,
        "plain_dbos_ms_per_step": plain_ms,
        "ratio": ours_ms / plain_ms if plain_ms > 0 else None,
        "first_step_start_ms": {
            "p50": statistics.median(step_starts),
            "max": max(step_starts),
            "target_max": MAX_STEP_START_MS,
        },
        "samples_s": {k: {str(n): v for n, v in t.items()} for k, t in timings.items()},
    }


# --- (b) event delivery -------------------------------------------------------------------------


async def bench_delivery(
    records: RecordStore, subscribers: int, events: int, spacing_s: float
) -> dict[str, Any]:
    record, _ = await records.create(
        "workflow", OWNER, {"title": "delivery bench"}, status="running"
    )
    appended_at: dict[int, float] = {}
    received: list[list[tuple[int, float]]] = [[] for _ in range(subscribers)]

    async def subscriber(inbox: list[tuple[int, float]]) -> None:
        async with contextlib.aclosing(records.follow(record.id)) as stream:
            async for event in stream:
                if event is None:  # an idle heartbeat, where the store offers them
                    continue
                inbox.append((event.sequence, time.perf_counter()))
                if event.sequence == events - 1:  # sequences start at 0
                    return

    tasks = [asyncio.create_task(subscriber(inbox)) for inbox in received]
    await asyncio.sleep(0.5)  # every subscriber has read the empty log and waits
    append_s = []
    for i in range(events):
        started = time.perf_counter()
        event = await records.append(record.id, "bench_event", {"i": i})
        append_s.append(time.perf_counter() - started)
        appended_at[event.sequence] = started
        await asyncio.sleep(spacing_s)
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    latencies = [
        (at - appended_at[sequence]) * 1000 for inbox in received for sequence, at in inbox
    ]
    assert len(latencies) == subscribers * events, "some subscriber missed events"
    assert all([s for s, _ in inbox] == list(range(events)) for inbox in received), "out of order"
    return {
        "subscribers": subscribers,
        "events": events,
        "spacing_ms": spacing_s * 1000,
        "p50_ms": statistics.median(latencies),
        "p99_ms": _percentile(latencies, 99),
        "max_ms": max(latencies),
        "append_p50_ms": statistics.median(append_s) * 1000,
    }


# --- (c) recovery -------------------------------------------------------------------------------


def _event_exists(db_file: Path, dedupe_key: str) -> bool:
    try:
        connection = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=5)
    except sqlite3.OperationalError:
        return False
    try:
        row = connection.execute(
            "SELECT 1 FROM record_events WHERE dedupe_key = ?", (dedupe_key,)
        ).fetchone()
    except sqlite3.OperationalError:  # tables not there yet
        return False
    finally:
        connection.close()
    return row is not None


def _recover_once(data_dir: Path) -> dict[str, Any]:
    worker = subprocess.Popen(
        [sys.executable, str(RUNNER), str(data_dir), "start"],
        stdout=subprocess.PIPE,
        stderr=(data_dir / "start.stderr").open("wb"),
        start_new_session=True,
    )
    try:
        assert worker.stdout is not None
        json.loads(worker.stdout.readline())  # the record exists and its workflow started
        deadline = time.monotonic() + 60
        while not _event_exists(data_dir / "sogni.sqlite", "clip:started"):
            assert worker.poll() is None and time.monotonic() < deadline, "the worker stalled"
            time.sleep(0.01)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        if worker.stdout is not None:
            worker.stdout.close()
    process_started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(RUNNER), str(data_dir), "recover", "--timeout", "60"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    process_s = time.perf_counter() - process_started
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    summary = json.loads(done.stdout.decode().strip().splitlines()[-1])
    [record] = summary["records"]
    assert record["status"] == "completed", record
    return {
        "launch_ms": summary["launch_s"] * 1000,
        "to_first_tool_call_ms": summary["first_tool_call_s"] * 1000,
        "to_first_new_event_ms": record["first_new_event_s"] * 1000,
        "interrupted_step_rerun_ms": summary["first_tool_call_duration_s"] * 1000,
        "until_terminal_ms": summary["until_terminal_s"] * 1000,
        "recover_process_ms": process_s * 1000,
    }


def bench_recovery(root: Path, runs: int) -> dict[str, Any]:
    samples = []
    for i in range(runs):
        data_dir = root / f"recovery-{i}"
        data_dir.mkdir()
        samples.append(_recover_once(data_dir))
    return {
        "runs": runs,
        **{key: statistics.median(s[key] for s in samples) for key in samples[0]},
        "samples": samples,
    }


# --- main ---------------------------------------------------------------------------------------


async def run_in_process(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    runtime, db = await open_runtime(root / "inproc")
    data_dir = root / "inproc"
    await durable.launch(settings_for(data_dir))
    try:
        steps = await bench_steps(runtime, args.short, args.long, args.runs)
        # A store as the server makes it (default poll interval), not the runner's fast one.
        delivery = await bench_delivery(
            RecordStore(db), args.subscribers, args.events, args.spacing_ms / 1000
        )
    finally:
        durable.shutdown()
        await db.close()
    return {"steps": steps, "delivery": delivery}


def _table(results: dict[str, Any]) -> str:
    s, d, r = results["steps"], results["delivery"], results["recovery"]
    start = s["first_step_start_ms"]
    ratio = "n/a" if s["ratio"] is None else f"{s['ratio']:.1f}x"
    rows = [
        ("(a) step overhead, ours (tool time removed)", f"{s['ours_ms_per_step']:.1f} ms/step"),
        ("    plain DBOS step (baseline)", f"{s['plain_dbos_ms_per_step']:.1f} ms/step"),
        ("    ratio ours / plain", ratio),
        ("    the tool called directly (for scale)", f"{s['tool_ms_per_step']:.1f} ms/step"),
        (
            "    workflow start -> its first step starts",
            f"p50 {start['p50']:.1f} ms, max {start['max']:.1f} ms "
            f"(target <= {start['target_max']:g} ms)",
        ),
        (
            f"(b) delivery to {d['subscribers']} subscribers, {d['events']} events",
            f"p50 {d['p50_ms']:.1f} ms, p99 {d['p99_ms']:.1f} ms, max {d['max_ms']:.1f} ms",
        ),
        ("    append (baseline: the write itself)", f"p50 {d['append_p50_ms']:.1f} ms"),
        ("(c) recovery: durable.launch returns", f"{r['launch_ms']:.0f} ms"),
        ("    launch -> interrupted tool running again", f"{r['to_first_tool_call_ms']:.0f} ms"),
        (
            "    launch -> first new event",
            f"{r['to_first_new_event_ms']:.0f} ms "
            f"(incl. {r['interrupted_step_rerun_ms']:.0f} ms re-running the step)",
        ),
        ("    launch -> workflow completed", f"{r['until_terminal_ms']:.0f} ms"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions of each chain length")
    parser.add_argument("--short", type=int, default=2, help="short chain length (steps)")
    parser.add_argument("--long", type=int, default=12, help="long chain (at most 12 steps)")
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--spacing-ms", type=float, default=10.0, help="pause between appends")
    parser.add_argument(
        "--recoveries",
        type=int,
        default=2,
        choices=range(1, 21),
        metavar="1..20",
        help="crash/recover cycles",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-workflows-") as tmp:
        root = Path(tmp)
        results = asyncio.run(run_in_process(root, args))
        results["recovery"] = bench_recovery(root, args.recoveries)
    print(json.dumps(results, indent=2) if args.json else _table(results))


if __name__ == "__main__":
    main()
