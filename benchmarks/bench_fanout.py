"""Benchmark: one persisted event fanned out to many SSE subscribers.

The server runs in this process (uvicorn on a free port, default settings, the default model
loaded) and appends events to a chat run and a workflow through its record store; the
subscribers run in a second process on raw asyncio connections (half on the run's
`events/stream`, half on the workflow's), so the figures are the server's and not a client
library's. Each event carries the wall-clock time of its append; a subscriber notes when it
parsed the frame. Printed: p50/p99/max of append -> receipt over every delivery (target: p99
at most 50 ms with 1,000 subscribers), next to the append itself (the baseline: the write),
and the server's resident memory per idle subscriber (RSS with all of them connected and
quiet, minus RSS before, divided by their number).

    .venv/bin/python benchmarks/bench_fanout.py [--subscribers 1000] [--events 30] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_chat_runs import _pct, served

MAX_P99_MS = 50.0
ENDS = (b"event: run_completed", b"event: workflow_completed")


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


# --- the subscriber process -------------------------------------------------------------------


async def _follow(port: int, key: str, path: str, delays: list[float], ready: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Accept: text/event-stream\r\n\r\n".encode()
    )
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"{path}: {status!r}")
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    ready.append(1)
    try:
        while line := await reader.readline():
            if line.startswith(b"data: {") and (at := line.find(b'"t":')) >= 0:
                # The send time, read without parsing the whole frame: the client shares
                # the CPU with the server and must stay cheap.
                delays.append(time.time() - float(line[at + 4 : line.index(b",", at)]))
            elif line.startswith(ENDS):
                return
    finally:
        writer.close()


async def _subscribe(port: int, key: str, paths: list[str], count: int) -> None:
    delays: list[float] = []
    ready: list[int] = []
    followers = [
        asyncio.create_task(_follow(port, key, paths[i % len(paths)], delays, ready))
        for i in range(count)
    ]
    while len(ready) < count:
        await asyncio.sleep(0.05)
        if any(f.done() and f.exception() for f in followers):
            break
    print(json.dumps({"connected": len(ready)}), flush=True)
    await asyncio.gather(*followers)
    print(json.dumps({"delays": delays}), flush=True)


# --- the server process -----------------------------------------------------------------------


async def measure(root: Path, subscribers: int, events: int) -> dict[str, Any]:
    async with served(root) as (app, port, key):
        records = app.state.server.chat_runs.deps.records
        info = await app.state.server.keys.check(key)
        assert info is not None
        run, _ = await records.create("chat_run", info.id, {"request": {}, "engine": {}})
        flow, _ = await records.create("workflow", info.id, {"steps": [], "artifacts": []})
        paths = [
            f"/v1/chat/runs/{run.id}/events/stream",
            f"/v1/creative-agent/workflows/{flow.id}/events/stream",
        ]
        await asyncio.sleep(1.0)
        rss_before = _rss_kib()
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--subscribe",
            json.dumps({"port": port, "key": key, "paths": paths, "count": subscribers}),
            stdout=subprocess.PIPE,
            limit=1 << 26,  # the delays come back as one JSON line
        )
        assert child.stdout is not None
        connected = json.loads(await child.stdout.readline())["connected"]
        if connected < subscribers:
            raise RuntimeError(f"only {connected} of {subscribers} subscribers connected")
        await asyncio.sleep(2.0)  # every stream idle
        rss_idle = _rss_kib()
        appends = []
        for i in range(events):
            for record_id in (run.id, flow.id):
                started = time.perf_counter()
                await records.append(record_id, "tool_call_progress", {"t": time.time(), "i": i})
                appends.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)
        await records.append(run.id, "run_completed", {"status": "completed"})
        await records.append(flow.id, "workflow_completed", {"status": "completed"})
        delays = json.loads(await asyncio.wait_for(child.stdout.readline(), 120))["delays"]
        await child.wait()
    ms = [d * 1000 for d in delays]
    return {
        "subscribers": subscribers,
        "events_per_record": events,
        "deliveries": len(ms),
        "expected_deliveries": subscribers * events,
        "p50_ms": _pct(ms, 50),
        "p99_ms": _pct(ms, 99),
        "max_ms": max(ms),
        "target_p99_ms": MAX_P99_MS,
        "append_p50_ms": _pct([a * 1000 for a in appends], 50),
        "rss_before_mib": rss_before / 1024,
        "rss_idle_mib": rss_idle / 1024,
        "kib_per_idle_subscriber": (rss_idle - rss_before) / subscribers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=30, help="events per record")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--subscribe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.subscribe:
        spec = json.loads(args.subscribe)
        import uvloop  # the cheapest client loop there is here

        uvloop.run(_subscribe(spec["port"], spec["key"], spec["paths"], spec["count"]))
        return
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        import uvloop

        r = uvloop.run(measure(Path(tmp), args.subscribers, args.events))
    if args.json:
        print(json.dumps(r, indent=2))
        return
    print(
        f"{r['subscribers']} SSE subscribers (half on a run, half on a workflow), "
        f"{r['events_per_record']} events each; {r['deliveries']}/{r['expected_deliveries']} "
        f"deliveries"
    )
    print(
        f"  append -> receipt: p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms "
        f"(target <= {r['target_p99_ms']:g} ms), max {r['max_ms']:.1f} ms"
    )
    print(f"  append itself (baseline): p50 {r['append_p50_ms']:.1f} ms")
    print(
        f"  server memory: {r['rss_before_mib']:.0f} MiB -> {r['rss_idle_mib']:.0f} MiB with "
        f"every subscriber idle ({r['kib_per_idle_subscriber']:.0f} KiB each)"
    )


if __name__ == "__main__":
    main()
