"""Cluster benchmark and check: API replicas and workers on one PostgreSQL, losing some.

Starts a throwaway PostgreSQL server (or uses `--database-url`, which must name an empty
database), two API replicas (`serve --no-worker`, executor ids api-1 and api-2) and two workers
(`worker` for every media queue, w-1 and w-2), as separate processes sharing one data
directory. It starts workflows (an image, then a clip made from it) and chat runs on both
replicas in turn, each followed over SSE on the *other* replica, and part-way SIGKILLs api-1 and
w-1, which never come back; a follower whose replica died reconnects to the live one with
`Last-Event-ID`. Then it checks that every record completed, that each follower saw a
gap-free sequence ending in the terminal event, and that no step announced its end twice.

Printed: cross-replica event delivery (the event's write time to its receipt on the other
replica, p50/p99; target p99 <= 100 ms), the time from the kills to the takeover of both dead
processes' work (target <= 15 s with the default takeover time), and last `N passed, M failed`.
`--quick` is a reduced form (about a minute) that the test suite runs.

    .venv/bin/python benchmarks/bench_cluster.py [--quick] [--workflows 50] [--runs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "sogni_intelligence.cli.main"]
MAX_DELIVERY_P99_MS = 100.0
MAX_TAKEOVER_S = 15.0
TERMINAL = {"workflow_completed", "workflow_failed", "workflow_cancelled"} | {
    "run_completed",
    "run_failed",
    "run_cancelled",
}
PLAN = {
    "title": "Cluster",
    "steps": [
        {
            "id": "still",
            "toolName": "generate_image",
            "arguments": {"prompt": "a harbour at dawn", "width": 256, "height": 256},
        },
        {
            "id": "clip",
            "toolName": "animate_photo",
            "arguments": {"prompt": "slow pan", "duration": 3, "width": 320, "height": 180},
            "dependsOn": [
                {
                    "sourceStepId": "still",
                    "targetArgument": "sourceImageIndex",
                    "transform": "image_index",
                    "required": True,
                }
            ],
        },
    ],
}
RUN = {
    "messages": [{"role": "user", "content": "Name three colours of the sea."}],
    "sogni_tools": "none",
    "sampling": {"temperature": 0, "max_tokens": 24},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Process:
    name: str
    args: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    url: str = ""


@dataclass
class Cluster:
    env: dict[str, str]
    key: str
    database_url: str
    processes: dict[str, Process] = field(default_factory=dict)

    def start(self, name: str, args: list[str], extra: dict[str, str]) -> Process:
        process = Process(name, args, Path(self.env["SOGNI_DATA_DIR"]) / f"{name}.log")
        with process.log.open("wb") as out:
            process.popen = subprocess.Popen(
                [*CLI, *args],
                env={**self.env, **extra},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.processes[name] = process
        return process

    def kill(self, name: str) -> None:
        popen = self.processes[name].popen
        assert popen is not None
        popen.send_signal(signal.SIGKILL)
        popen.wait()


@contextlib.contextmanager
def _postgres(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="bench-cluster-pg-") as tmp:
        script = ROOT / "scripts" / "postgres-for-tests.sh"
        started = subprocess.run([str(script), tmp], capture_output=True, text=True, check=True)
        try:
            yield started.stdout.strip()
        finally:
            bin_dir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
            stop = [str(bin_dir / "pg_ctl"), "-D", f"{tmp}/data", "-m", "immediate", "stop"]
            if os.getuid() == 0:
                stop = ["runuser", "-u", "postgres", "--", *stop]
            subprocess.run(stop, capture_output=True, check=False)


def _healthy(process: Process, deadline: float) -> None:
    assert process.popen is not None
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited:\n{process.log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{process.url}/health", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{process.name} did not become healthy:\n{process.log.read_text()}")


def start_cluster(data: Path, database_url: str, takeover_after_s: float) -> Cluster:
    models = [{"id": "smollm2-135m-instruct", "aliases": ["default"], "n_parallel": 2}]
    env = {
        **os.environ,
        "SOGNI_DATA_DIR": str(data),
        "SOGNI_DATABASE_URL": database_url,
        "SOGNI_MODELS": json.dumps(models),
        "SOGNI_DEFAULT_MODEL": "smollm2-135m-instruct",
        "SOGNI_LOG_LEVEL": "warning",
        "SOGNI_QUEUE_POLL_S": "0.5",
        "SOGNI_HEARTBEAT_S": "1",
        "SOGNI_TAKEOVER_AFTER_S": str(takeover_after_s),
        "SOGNI_KEY_CACHE_SECONDS": "0",
    }
    env.pop("SOGNI_CONFIG", None)
    made = subprocess.run(
        [*CLI, "keys", "--json", "create", "--name", "cluster"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    cluster = Cluster(env, json.loads(made.stdout)["key"], database_url)
    for name in ("api-1", "api-2"):
        port = _free_port()
        process = cluster.start(
            name,
            ["serve", "--no-worker"],
            {"SOGNI_EXECUTOR_ID": name, "SOGNI_PORT": str(port)},
        )
        process.url = f"http://127.0.0.1:{port}"
    for name in ("w-1", "w-2"):
        queues = "image,video,audio,analysis"
        cluster.start(name, ["worker", "--queues", queues, "--executor-id", name], {})
    deadline = time.monotonic() + 180
    try:
        for name in ("api-1", "api-2"):
            _healthy(cluster.processes[name], deadline)
    except BaseException:  # one did not start: stop the others rather than leave them running
        stop_cluster(cluster)
        raise
    return cluster


def stop_cluster(cluster: Cluster) -> None:
    for process in cluster.processes.values():
        if process.popen is not None and process.popen.poll() is None:
            process.popen.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(20)
            process.popen.kill()


# --- following a record over SSE --------------------------------------------------------------


@dataclass
class Followed:
    kind: str  # "workflow" or "run"
    record_id: str
    replicas: list[str]  # where to follow it, in order of preference
    sequences: list[int] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    delays_ms: list[float] = field(default_factory=list)
    reconnects: int = 0

    def stream_path(self) -> str:
        if self.kind == "workflow":
            return f"/v1/creative-agent/workflows/{self.record_id}/events/stream"
        return f"/v1/chat/runs/{self.record_id}/events/stream"


def _written_at(kind: str, body: dict[str, Any]) -> float:
    stamp = body["timestamp"] if kind == "workflow" else body["at"]
    return datetime.fromisoformat(stamp).timestamp()


async def follow(cluster: Cluster, followed: Followed, live: set[str]) -> None:
    """Follow to the terminal event, moving to a live replica when the connection breaks."""
    headers = {"Authorization": f"Bearer {cluster.key}"}
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=60)) as client:
        while not (followed.types and followed.types[-1] in TERMINAL):
            replica = next(r for r in followed.replicas if r in live)
            url = cluster.processes[replica].url + followed.stream_path()
            if followed.sequences:
                headers["Last-Event-ID"] = str(followed.sequences[-1])
            connected_at = time.time()
            try:
                async with client.stream("GET", url, headers=headers) as response:
                    response.raise_for_status()
                    async for line in response.aiter_lines():
                        if line.startswith("id: "):
                            followed.sequences.append(int(line[4:]))
                        elif line.startswith("event: "):
                            followed.types.append(line[7:])
                        elif line.startswith("data: "):
                            at = _written_at(followed.kind, json.loads(line[6:]))
                            if at > connected_at:  # written while we listened: live
                                followed.delays_ms.append((time.time() - at) * 1000)
            except (httpx.HTTPError, OSError):
                followed.reconnects += 1
                await asyncio.sleep(0.2)


async def _start(cluster: Cluster, replica: str, kind: str) -> str:
    headers = {"Authorization": f"Bearer {cluster.key}"}
    url = cluster.processes[replica].url
    async with httpx.AsyncClient(timeout=30) as client:
        if kind == "workflow":
            started = await client.post(
                f"{url}/v1/creative-agent/workflows", json={"input": PLAN}, headers=headers
            )
            started.raise_for_status()
            return started.json()["data"]["workflow"]["workflowId"]
        started = await client.post(f"{url}/v1/chat/runs", json=RUN, headers=headers)
        started.raise_for_status()
        return started.json()["data"]["run"]["runId"]


async def _beating(database_url: str) -> set[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT executor_id FROM process_beats")
    finally:
        await conn.close()
    return {row["executor_id"] for row in rows}


# --- the scenario ------------------------------------------------------------------------------


async def drive(cluster: Cluster, workflows: int, runs: int) -> dict[str, Any]:
    live = {"api-1", "api-2"}
    kinds = ["workflow"] * workflows + ["run"] * runs
    kinds = [k for pair in zip(kinds[::2], kinds[1::2], strict=False) for k in pair] + (
        [kinds[-1]] if len(kinds) % 2 else []
    )
    followers: list[tuple[Followed, asyncio.Task[None]]] = []
    kill_at = len(kinds) // 2
    killed_at = 0.0
    for i, kind in enumerate(kinds):
        if i == kill_at:
            # Let the work in flight get going, then lose a replica and a worker for good.
            await asyncio.sleep(1.0)
            cluster.kill("w-1")
            cluster.kill("api-1")
            live.discard("api-1")
            killed_at = time.monotonic()
        replicas = sorted(live)
        origin = replicas[i % len(replicas)]
        record_id = await _start(cluster, origin, kind)
        other = [r for r in ("api-1", "api-2") if r != origin] + [origin]
        followed = Followed(kind, record_id, other)
        followers.append((followed, asyncio.create_task(follow(cluster, followed, live))))
        await asyncio.sleep(0.05)
    takeover_s = None
    while time.monotonic() - killed_at < 120:
        if not {"api-1", "w-1"} & await _beating(cluster.database_url):
            takeover_s = time.monotonic() - killed_at
            break
        await asyncio.sleep(0.2)
    await asyncio.wait_for(asyncio.gather(*(task for _, task in followers)), 600)
    return {"followed": [f for f, _ in followers], "takeover_s": takeover_s}


def check(followed: list[Followed]) -> tuple[int, list[str]]:
    passed, failures = 0, []
    for f in followed:
        problems = []
        if f.sequences != list(range(len(f.sequences))):
            problems.append(f"sequences not gap-free: {f.sequences}")
        terminal = "workflow_completed" if f.kind == "workflow" else "run_completed"
        if not f.types or f.types[-1] != terminal:
            problems.append(f"ended with {f.types[-3:]}")
        ends = Counter(t for t in f.types if t in ("step_completed", "step_failed"))
        if f.kind == "workflow" and ends != {"step_completed": len(PLAN["steps"])}:
            problems.append(f"step ends {dict(ends)}")
        if problems:
            failures.append(f"{f.kind} {f.record_id}: " + "; ".join(problems))
        else:
            passed += 1
    return passed, failures


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 workflows and 4 runs")
    parser.add_argument("--workflows", type=int, default=50)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--takeover-after", type=float, default=6.0, help="seconds")
    parser.add_argument("--database-url", help="an empty PostgreSQL database to use")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    workflows, runs = (8, 4) if args.quick else (args.workflows, args.runs)
    with (
        tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp,
        _postgres(args.database_url) as database_url,
    ):
        cluster = start_cluster(Path(tmp), database_url, args.takeover_after)
        try:
            result = asyncio.run(drive(cluster, workflows, runs))
        finally:
            stop_cluster(cluster)
    followed: list[Followed] = result["followed"]
    passed, failures = check(followed)
    delays = [d for f in followed for d in f.delays_ms]
    summary = {
        "workflows": workflows,
        "runs": runs,
        "delivery_p50_ms": _pct(delays, 50),
        "delivery_p99_ms": _pct(delays, 99),
        "target_delivery_p99_ms": MAX_DELIVERY_P99_MS,
        "takeover_s": result["takeover_s"],
        "target_takeover_s": MAX_TAKEOVER_S,
        "reconnects": sum(f.reconnects for f in followed),
        "passed": passed,
        "failed": len(failures),
        "failures": failures,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{workflows} workflows and {runs} chat runs over 2 replicas and 2 workers")
        print(
            f"  cross-replica delivery: p50 {summary['delivery_p50_ms']:.1f} ms, "
            f"p99 {summary['delivery_p99_ms']:.1f} ms (target <= {MAX_DELIVERY_P99_MS:g} ms)"
        )
        takeover = result["takeover_s"]
        print(
            "  kill -> dead processes' work handed over: "
            + (f"{takeover:.1f} s" if takeover is not None else "never")
            + f" (target <= {MAX_TAKEOVER_S:g} s); {summary['reconnects']} SSE reconnects"
        )
        for failure in failures:
            print(f"  FAILED {failure}")
        print(f"{passed} passed, {len(failures)} failed")
    return 0 if not failures and result["takeover_s"] is not None else 1


if __name__ == "__main__":
    sys.exit(main())
