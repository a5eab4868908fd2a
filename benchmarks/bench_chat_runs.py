"""Benchmark: durable chat runs.

(a) Delivery: events appended to a run's log reach 100 concurrent SSE subscribers of
    `GET /v1/chat/runs/{id}/events/stream` over real HTTP; p50/p99 of the time from the append
    to a subscriber parsing the frame, next to the append itself (the baseline: the write).
(b) Throughput: 50 concurrent runs on the default model (no hosted tools, a short answer)
    against the same 50 prompts as plain chat completions on the same server: wall time of
    each batch and the ratio (what durability costs a whole turn; target 1.25x); and one run
    at a time against one plain completion of the same prompt, to the terminal event seen on
    the run's stream (p50 of 10; target 1.3x).
(c) Recovery: a server process is killed (SIGKILL) while a run is generating; a new process
    on the same data directory starts; times from its start to healthy, to `run_resumed`,
    and to the run's terminal event.

    .venv/bin/python benchmarks/bench_chat_runs.py [--subscribers 100] [--runs 50] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import uvloop

from sogni_intelligence.api.app import create_app
from sogni_intelligence.config import PUBLIC_MODEL_IDS, ModelConfig, Settings
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.keys import KeyStore

TERMINAL = ("run_completed", "run_partial_failure", "run_failed", "run_cancelled")
SINGLE_RUNS = 10
MAX_BATCH_RATIO = 1.25
MAX_SINGLE_RATIO = 1.3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def _settings(data: Path, port: int) -> Settings:
    model = ModelConfig(
        id="smollm2-135m-instruct", aliases=list(PUBLIC_MODEL_IDS), n_parallel=4, n_ctx=16384
    )
    return Settings(data_dir=data, port=port, models=[model], key_cache_seconds=60)


async def _key(settings: Settings) -> str:
    settings.ensure_data_dir()
    db = Database(settings.resolved_database_url)
    await db.create_all()
    key, _ = await KeyStore(db).create("bench")
    await db.close()
    return key


def _run_body(prompt: str, max_tokens: int) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": prompt}],
        "sogni_tools": "none",
        "sampling": {"temperature": 0, "max_tokens": max_tokens},
    }


# --- (a) and (b): one server in this process ---------------------------------------------------


async def _subscriber(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], delays: list[float]
) -> None:
    async with client.stream("GET", url, headers=headers, timeout=None) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                arrived = time.perf_counter()
                event = json.loads(line[6:])
                sent = (event.get("payload") or {}).get("t")
                if sent is not None:
                    delays.append(arrived - sent)


async def bench_delivery(app: Any, url: str, key: str, subscribers: int, events: int) -> dict:
    records = app.state.server.chat_runs.deps.records
    info = await app.state.server.keys.check(key)
    assert info is not None
    owner = info.id
    record, _ = await records.create("chat_run", owner, {"request": {}, "engine": {}})
    headers = {"Authorization": f"Bearer {key}"}
    stream_url = f"{url}/v1/chat/runs/{record.id}/events/stream"
    delays: list[float] = []
    limits = httpx.Limits(max_connections=subscribers + 10)
    async with httpx.AsyncClient(limits=limits) as client:
        tasks = [
            asyncio.create_task(_subscriber(client, stream_url, headers, delays))
            for _ in range(subscribers)
        ]
        await asyncio.sleep(2.0)  # every subscriber connected and caught up
        appends = []
        for i in range(events):
            started = time.perf_counter()
            await records.append(record.id, "tool_call_progress", {"t": started, "i": i})
            appends.append(time.perf_counter() - started)
            await asyncio.sleep(0.01)
        await records.append(record.id, "run_completed", {"status": "completed"})
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    ms = [d * 1000 for d in delays]
    return {
        "subscribers": subscribers,
        "events": events,
        "deliveries": len(ms),
        "p50_ms": _pct(ms, 50),
        "p99_ms": _pct(ms, 99),
        "max_ms": max(ms),
        "append_p50_ms": statistics.median(appends) * 1000,
    }


async def _wait_terminal(client: httpx.AsyncClient, run_id: str, headers: dict) -> str:
    async with client.stream(
        "GET", f"/v1/chat/runs/{run_id}/events/stream", headers=headers, timeout=None
    ) as response:
        async for line in response.aiter_lines():
            if line.startswith("event: ") and line[7:] in TERMINAL:
                return line[7:]
    return "closed"


async def bench_throughput(url: str, key: str, runs: int, max_tokens: int) -> dict:
    headers = {"Authorization": f"Bearer {key}"}
    prompts = [f"Say hello to guest number {i} in one short sentence." for i in range(runs)]
    limits = httpx.Limits(max_connections=2 * runs + 10)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=600) as client:

        async def plain(prompt: str) -> None:
            body = {
                "messages": [{"role": "user", "content": prompt}],
                "sogni_tools": "none",
                "temperature": 0,
                "max_tokens": max_tokens,
            }
            response = await client.post("/v1/chat/completions", json=body, headers=headers)
            response.raise_for_status()

        async def durable(prompt: str) -> str:
            response = await client.post(
                "/v1/chat/runs", json=_run_body(prompt, max_tokens), headers=headers
            )
            response.raise_for_status()
            return await _wait_terminal(client, response.json()["data"]["run"]["runId"], headers)

        await plain("warm up")
        await durable("warm up")
        single: dict[str, list[float]] = {"plain": [], "durable": []}
        for prompt in prompts[:SINGLE_RUNS]:  # one at a time, alternating, same prompt
            for name, call in (("plain", plain), ("durable", durable)):
                started = time.perf_counter()
                await call(prompt)
                single[name].append(time.perf_counter() - started)
        started = time.perf_counter()
        await asyncio.gather(*(plain(p) for p in prompts))
        plain_s = time.perf_counter() - started
        started = time.perf_counter()
        endings = await asyncio.gather(*(durable(p) for p in prompts))
        durable_s = time.perf_counter() - started
    single_plain, single_durable = (statistics.median(single[k]) for k in ("plain", "durable"))
    return {
        "runs": runs,
        "plain_completions_s": plain_s,
        "durable_runs_s": durable_s,
        "ratio": durable_s / plain_s,
        "target_ratio": MAX_BATCH_RATIO,
        "completed": sum(1 for e in endings if e == "run_completed"),
        "single_runs": len(single["plain"]),
        "single_plain_p50_ms": single_plain * 1000,
        "single_durable_p50_ms": single_durable * 1000,
        "single_ratio": single_durable / single_plain,
        "single_target_ratio": MAX_SINGLE_RATIO,
    }


@contextlib.asynccontextmanager
async def served(data: Path) -> AsyncIterator[tuple[Any, int, str]]:
    """The app served by uvicorn in this process on a free port: (app, port, API key)."""
    port = _free_port()
    settings = _settings(data, port)
    key = await _key(settings)
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        yield app, port, key
    finally:
        server.should_exit = True
        await serving


async def in_process(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    async with served(root / "inproc") as (app, port, key):
        url = f"http://127.0.0.1:{port}"
        delivery = await bench_delivery(app, url, key, args.subscribers, args.events)
        throughput = await bench_throughput(url, key, args.runs, args.max_tokens)
    return {"delivery": delivery, "throughput": throughput}


# --- (c): kill and restart a server process ----------------------------------------------------


def _serve(data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    model = {"id": "smollm2-135m-instruct", "aliases": list(PUBLIC_MODEL_IDS), "n_parallel": 2}
    env = {
        **os.environ,
        "SOGNI_DATA_DIR": str(data),
        "SOGNI_PORT": str(port),
        "SOGNI_MODELS": json.dumps([model]),
        "SOGNI_LOG_LEVEL": "warning",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "sogni_intelligence.cli.main", "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _healthy(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise RuntimeError("server did not become healthy")


def bench_recovery(root: Path) -> dict[str, Any]:
    data = root / "recovery"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    settings = _settings(data, port)
    key = asyncio.run(_key(settings))
    headers = {"Authorization": f"Bearer {key}"}
    log = data / "server.log"
    first = _serve(data, port, log)
    try:
        _healthy(url, time.monotonic() + 120)
        body = _run_body("Write a long story about a lighthouse keeper and a storm.", 400)
        run = httpx.post(f"{url}/v1/chat/runs", json=body, headers=headers, timeout=30)
        run_id = run.json()["data"]["run"]["runId"]
        deadline = time.monotonic() + 60
        while True:  # kill while the first round is generating
            events = httpx.get(f"{url}/v1/chat/runs/{run_id}/events", headers=headers).json()
            if any(e["type"] == "assistant_message_delta" for e in events["data"]["events"]):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the run never started generating")
            time.sleep(0.02)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    restarted = time.perf_counter()
    second = _serve(data, port, log)
    try:
        _healthy(url, time.monotonic() + 120)
        healthy = time.perf_counter()
        resumed = ended = None
        with httpx.stream(
            "GET", f"{url}/v1/chat/runs/{run_id}/events/stream", headers=headers, timeout=None
        ) as response:
            for line in response.iter_lines():
                if line == "event: run_resumed" and resumed is None:
                    resumed = time.perf_counter()
                if line.startswith("event: ") and line[7:] in TERMINAL:
                    ended = time.perf_counter()
                    break
    finally:
        second.terminate()
        second.wait(30)
    return {
        "restart_to_healthy_ms": (healthy - restarted) * 1000,
        "restart_to_run_resumed_seen_ms": ((resumed or healthy) - restarted) * 1000,
        "restart_to_terminal_ms": ((ended or healthy) - restarted) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-runs-") as tmp:
        root = Path(tmp)
        # The server's own loop, as `serve` runs it (the client shares it here).
        result = uvloop.run(in_process(root, args))
        result["recovery"] = bench_recovery(root)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    d, t, r = result["delivery"], result["throughput"], result["recovery"]
    rows = [
        (
            f"(a) delivery to {d['subscribers']} SSE subscribers",
            f"p50 {d['p50_ms']:.1f} ms, p99 {d['p99_ms']:.1f} ms, max {d['max_ms']:.1f} ms",
        ),
        ("    append itself (baseline)", f"p50 {d['append_p50_ms']:.1f} ms"),
        (
            f"(b) {t['runs']} concurrent durable runs",
            f"{t['durable_runs_s']:.2f} s ({t['completed']} completed)",
        ),
        ("    same prompts as plain completions", f"{t['plain_completions_s']:.2f} s"),
        ("    ratio durable / plain", f"{t['ratio']:.2f}x (target <= {t['target_ratio']:g}x)"),
        (
            f"    one run at a time (p50 of {t['single_runs']})",
            f"{t['single_durable_p50_ms']:.0f} ms, plain {t['single_plain_p50_ms']:.0f} ms: "
            f"{t['single_ratio']:.2f}x (target <= {t['single_target_ratio']:g}x)",
        ),
        ("(c) restart -> healthy", f"{r['restart_to_healthy_ms']:.0f} ms"),
        ("    restart -> run_resumed seen", f"{r['restart_to_run_resumed_seen_ms']:.0f} ms"),
        ("    restart -> run finished", f"{r['restart_to_terminal_ms']:.0f} ms"),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


if __name__ == "__main__":
    main()
