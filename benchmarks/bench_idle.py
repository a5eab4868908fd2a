"""Benchmark: CPU an idle server uses, alone and beside another process.

A server with nothing to do still has threads that wake: DBOS's own (an internal queue and
background jobs, each once a second) and our heartbeat. Once another process shares the
database, the server also polls each queue it serves for jobs the other one queued, once per
`SOGNI_QUEUE_POLL_S` (jobs a process makes itself start at once, see `bench_workflows.py`; a
process alone polls nothing). This starts `sogni-intelligence serve` on the default model alone
(default, and `--no-worker`) and beside an idle `sogni-intelligence worker` on the same data
directory (default poll, and a 1 s poll); waits until each is healthy and settled; and reads
the server process's CPU time over a quiet window from the scheduler. The baseline is DBOS
alone, launched as the server launches it (same queues, same SQLite setup) in a process that
does nothing else: what the durable engine costs by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from sogni_intelligence.config import PUBLIC_MODEL_IDS

MAX_IDLE_PERCENT = 1.0
#: Start-up work (model warm-up, DBOS recovery, the first beats) is over by then.
SETTLE_S = 10
#: The process beside the server in the cases with company: a worker with nothing to do.
IDLE_WORKER = ("--queues", "audio", "--executor-id", "idle-worker")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """CPU time of the process's live threads, from the scheduler's own count (nanoseconds,
    /proc/<pid>/task/*/schedstat): exact even for threads that wake for a few hundred
    microseconds, which clock-tick sampling mostly misses or charges whole ticks for."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
            continue
    return total / 1e9


def dbos_alone(data_dir: Path) -> None:
    """The baseline process: DBOS launched as `serve` launches it, then nothing."""
    from sogni_intelligence.config import Settings
    from sogni_intelligence.runtime import durable

    async def idle() -> None:
        await durable.launch(Settings(data_dir=data_dir))
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(idle())


def dbos_idle_cpu(root: Path, window_s: float) -> dict[str, Any]:
    data = root / "dbos-alone"
    data.mkdir(parents=True)
    env = {**os.environ, "SOGNI_LOG_LEVEL": "warning"}
    peer = subprocess.Popen(
        [sys.executable, __file__, "--dbos-alone", str(data)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert peer.stdout is not None and peer.stdout.readline().strip() == "ready"
    except BaseException:
        peer.terminate()
        raise
    return _measured(peer, "DBOS alone (baseline)", window_s)


def _measured(process: subprocess.Popen[Any], name: str, window_s: float) -> dict[str, Any]:
    """The CPU a started process uses over a quiet window once its start-up work (model
    warm-up, DBOS recovery) is over; the process is stopped afterwards."""
    try:
        time.sleep(SETTLE_S)
        before, started = cpu_seconds(process.pid), time.monotonic()
        time.sleep(window_s)
        used, elapsed = cpu_seconds(process.pid) - before, time.monotonic() - started
    finally:
        process.terminate()
        process.wait(30)
    return {"name": name, "cpu_percent_of_one_core": 100 * used / elapsed}


def idle_cpu(
    root: Path,
    name: str,
    env_extra: dict[str, str],
    args: list[str],
    window_s: float,
    beside_worker: bool = False,
) -> dict[str, Any]:
    data = root / name
    port = _free_port()
    model = {"id": "smollm2-135m-instruct", "aliases": list(PUBLIC_MODEL_IDS), "n_parallel": 2}
    env = {
        **os.environ,
        "SOGNI_DATA_DIR": str(data),
        "SOGNI_PORT": str(port),
        "SOGNI_MODELS": json.dumps([model]),
        "SOGNI_LOG_LEVEL": "warning",
        **env_extra,
    }
    data.mkdir(parents=True)

    def started(command: str, *argv: str) -> subprocess.Popen[bytes]:
        with (data / f"{command}.log").open("wb") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "sogni_intelligence.cli.main", command, *argv],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    server = started("serve", *args)
    # The worker is idle itself; measured is the server, which now has company.
    worker = started("worker", *IDLE_WORKER) if beside_worker else None
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: the server did not become healthy")
            time.sleep(0.1)
        return _measured(server, name, window_s)
    finally:
        for process in (server, worker):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=float, default=20, help="seconds measured per server")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--dbos-alone", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dbos_alone is not None:
        dbos_alone(args.dbos_alone)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        peer = dbos_idle_cpu(root, args.window)
        cases: list[tuple[str, dict[str, str], list[str], bool]] = [
            ("default (alone)", {}, [], False),
            ("no worker queues (--no-worker), alone", {}, ["--no-worker"], False),
            ("beside a worker (5 queues polled every 5 s)", {}, [], True),
            ("beside a worker, 1 s poll", {"SOGNI_QUEUE_POLL_S": "1"}, [], True),
        ]
        results = [peer] + [
            idle_cpu(root, name, env, argv, args.window, beside)
            for name, env, argv, beside in cases
        ]
    baseline = peer["cpu_percent_of_one_core"]
    for result in results:
        result["ratio_to_dbos_alone"] = result["cpu_percent_of_one_core"] / max(baseline, 1e-9)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    width = max(len(r["name"]) for r in results)
    print(
        f"idle CPU over {args.window:.0f} s, % of one core (ratio to DBOS alone); "
        f"target for the default: <= {MAX_IDLE_PERCENT:g} %"
    )
    for r in results:
        print(
            f"  {r['name']:<{width}}  {r['cpu_percent_of_one_core']:5.2f} %"
            f"  ({r['ratio_to_dbos_alone']:.1f}x)"
        )


if __name__ == "__main__":
    main()
