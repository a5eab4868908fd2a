"""Soak: durable records under random crashes end terminal, gap-free, with no step repeated.

Starts `sogni-intelligence serve` (the default model, DBOS and our records on SQLite, or on
PostgreSQL with `--database-url`), then for `--duration` seconds keeps starting work of every
kind: workflows (one image; an image then a clip; from a template; with unreachable media; a
cancelled one), chat runs (plain; a forced image call; with unreachable media), and starts with
refused media that must be a 400. Every 20-60 s (`--kill-every`) the server's whole process
group gets SIGKILL and the server is started again at once.

At the end the server runs undisturbed until every record is settled (`--settle` seconds at
most), and the database is checked: every record terminal (or paused for the user with that
event last), its events numbered 0..n-1 with one terminal event, last; `failed` and
`partial_failure` records carry a `failureReason`; no step completed twice and no artifact
announced twice; refused starts answered 400. Prints a JSON summary; exit status 1 on any
violation.

    .venv/bin/python benchmarks/soak_durable.py --duration 1800
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from sogni_intelligence.config import PUBLIC_MODEL_IDS

WORKFLOWS = "/v1/creative-agent/workflows"
RUNS = "/v1/chat/runs"
TERMINAL = {"completed", "partial_failure", "failed", "cancelled"}
TERMINAL_EVENTS = {
    "workflow_completed",
    "workflow_failed",
    "workflow_cancelled",
    "run_completed",
    "run_partial_failure",
    "run_failed",
    "run_cancelled",
}
UNREACHABLE = "http://media.invalid/x.png"
REFUSED = "http://127.0.0.1:1/x.png"
IMAGE_STEP = {
    "id": "keyframe",
    "toolName": "generate_image",
    "arguments": {"prompt": "a lighthouse at dusk", "width": 256, "height": 256},
}
CHAIN = {
    "steps": [
        IMAGE_STEP,
        {
            "id": "clip",
            "toolName": "animate_photo",
            "arguments": {"prompt": "slow push in", "duration": 2, "width": 256, "height": 256},
            "dependsOn": [
                {
                    "sourceStepId": "keyframe",
                    "targetArgument": "sourceImageIndex",
                    "transform": "image_index",
                }
            ],
        },
    ]
}
# Long enough (an 8 s clip at 640x360) that a cancel usually lands while it runs.
LONG_CHAIN = {
    "steps": [
        CHAIN["steps"][0],
        {
            **CHAIN["steps"][1],
            "arguments": {"prompt": "slow pan", "duration": 8, "width": 640, "height": 360},
        },
    ]
}
TEMPLATE = {
    "name": "Soak poster",
    "inputs": [{"name": "subject", "type": "text", "required": True}],
    "stages": [
        {
            "type": "fixed",
            "id": "poster",
            "tool": "generate_image",
            "args": {"prompt": "a poster of $inputs.subject", "width": 256, "height": 256},
        }
    ],
}


def _run_body(**extra: Any) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": "Say hello to the soak test."}],
        "tool_choice": "none",
        "sampling": {"temperature": 0, "max_tokens": 16},
        **extra,
    }


# What the client starts, each with the status a start must answer.
KINDS: dict[str, tuple[str, dict[str, Any], int]] = {
    "workflow_image": (WORKFLOWS, {"input": {"steps": [IMAGE_STEP]}}, 201),
    "workflow_chain": (WORKFLOWS, {"input": CHAIN, "confirm_cost": True}, 201),
    "workflow_unreachable_media": (
        WORKFLOWS,
        {"input": {"steps": [IMAGE_STEP]}, "media_references": [{"url": UNREACHABLE}]},
        201,
    ),
    "workflow_refused_media": (
        WORKFLOWS,
        {"input": {"steps": [IMAGE_STEP]}, "media_references": [{"url": REFUSED}]},
        400,
    ),
    "run_plain": (RUNS, _run_body(), 202),
    "run_image": (
        RUNS,
        _run_body(
            messages=[{"role": "user", "content": "Make a 256x256 picture of a red fox."}],
            tool_choice={"type": "function", "function": {"name": "generate_image"}},
            sampling={"temperature": 0, "max_tokens": 100},
        ),
        202,
    ),
    "run_unreachable_media": (
        RUNS,
        _run_body(media_references=[{"kind": "image", "url": UNREACHABLE}]),
        202,
    ),
    "run_refused_media": (RUNS, _run_body(media_references=[{"url": REFUSED}]), 400),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """The server process, killed and started again on demand."""

    def __init__(self, data: Path, database_url: str | None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        model = {
            "id": "smollm2-135m-instruct",
            "aliases": list(PUBLIC_MODEL_IDS),
            "n_parallel": 2,
            "n_ctx": 4096,
            "threads": 1,
        }
        self.env = {
            **os.environ,
            "SOGNI_DATA_DIR": str(data),
            "SOGNI_PORT": str(self.port),
            "SOGNI_MODELS": json.dumps([model]),
            "SOGNI_AGENT_MAX_ROUNDS": "2",
            "SOGNI_MEDIA_FETCH_TIMEOUT_S": "5",
            "SOGNI_LOG_LEVEL": "warning",
        }
        if database_url:
            self.env["SOGNI_DATABASE_URL"] = database_url
        self.env.pop("SOGNI_CONFIG", None)
        self.log = data / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "sogni_intelligence.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout

    async def start(self) -> float:
        """Start it and wait until healthy; the seconds that took."""
        began = time.monotonic()
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sogni_intelligence.cli.main", "serve"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a kill takes its ffmpeg jobs too
            )
        self.starts += 1
        async with httpx.AsyncClient(timeout=1) as http:
            while time.monotonic() - began < 120:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the server exited; see {self.log}")
                try:
                    if (await http.get(f"{self.url}/health")).status_code == 200:
                        return time.monotonic() - began
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"the server did not become healthy; see {self.log}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


async def _client(
    server: Server, key: str, deadline: float, interval_s: float, seed: int
) -> dict[str, Any]:
    """Start work until the deadline; what was started and what each start answered."""
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {key}"}
    answers: Counter[str] = Counter()
    wrong: list[str] = []
    template_id: str | None = None
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
        while time.monotonic() < deadline:
            await asyncio.sleep(interval_s)
            choice = rng.choice([*KINDS, "workflow_template", "workflow_cancelled"])
            try:
                if choice == "workflow_template":
                    if template_id is None:
                        made = await http.post(f"{WORKFLOWS}/templates", json=TEMPLATE)
                        made.raise_for_status()
                        template_id = made.json()["data"]["template"]["id"]
                    path, body, expected = (
                        WORKFLOWS,
                        {"workflow_id": template_id, "inputs": {"subject": "a fox"}},
                        201,
                    )
                elif choice == "workflow_cancelled":
                    path, body, expected = (
                        WORKFLOWS,
                        {"input": LONG_CHAIN, "confirm_cost": True},
                        201,
                    )
                else:
                    path, body, expected = KINDS[choice]
                response = await http.post(path, json=body)
                answers[f"{choice}:{response.status_code}"] += 1
                if response.status_code != expected:
                    wrong.append(f"{choice}: {response.status_code} {response.text[:300]}")
                elif choice == "workflow_cancelled":
                    workflow_id = response.json()["data"]["workflow"]["workflowId"]
                    await asyncio.sleep(rng.uniform(0.1, 1.5))
                    await http.post(f"{WORKFLOWS}/{workflow_id}/cancel", json={})
            except (httpx.HTTPError, KeyError, ValueError):
                answers[f"{choice}:no answer"] += 1  # the server was down or just killed
    return {"answers": dict(sorted(answers.items())), "wrong_answers": wrong}


async def _killer(
    server: Server, deadline: float, every: tuple[float, float], seed: int
) -> dict[str, Any]:
    rng = random.Random(seed + 1)
    restarts: list[float] = []
    while True:
        wait = rng.uniform(*every)
        if time.monotonic() + wait >= deadline:
            break
        await asyncio.sleep(wait)
        server.kill()
        restarts.append(await server.start())
    return {
        "kills": len(restarts),
        "restart_to_healthy_s_max": round(max(restarts, default=0.0), 2),
    }


def _sync_url(database_url: str) -> str:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return str(url.set(drivername="sqlite"))
    return str(url.set(drivername="postgresql+psycopg"))


def _open_records(engine: Any) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM durable_records WHERE status IN ('queued', 'running')")
            ).scalar_one()
        )


def _check(engine: Any) -> dict[str, Any]:
    """Every record settled, its events gap-free with one terminal event last, failures with a
    reason, no step completed twice, no artifact announced twice."""
    violations: list[str] = []
    statuses: Counter[str] = Counter()
    with engine.connect() as conn:
        records = conn.execute(text("SELECT id, kind, status, data FROM durable_records")).all()
        for record_id, kind, status, data in records:
            data = json.loads(data) if isinstance(data, str) else data
            statuses[f"{kind}:{status}"] += 1
            rows = conn.execute(
                text(
                    "SELECT sequence, type, payload FROM record_events WHERE record_id = :id "
                    "ORDER BY sequence"
                ),
                {"id": record_id},
            ).all()
            sequences = [row[0] for row in rows]
            types = [row[1] for row in rows]
            payloads = [json.loads(p) if isinstance(p, str) else (p or {}) for _, _, p in rows]
            if sequences != list(range(len(sequences))):
                violations.append(f"{record_id}: events not gap-free: {sequences}")
            ends = [t for t in types if t in TERMINAL_EVENTS]
            if status in TERMINAL:
                if len(ends) != 1 or types[-1] not in TERMINAL_EVENTS:
                    violations.append(f"{record_id} ({status}): terminal events {ends}")
            elif status == "waiting_for_user":
                if not types or types[-1] != "run_waiting_for_user":
                    violations.append(f"{record_id} waits without saying so: {types[-3:]}")
            else:
                violations.append(f"{record_id} ({kind}) is still {status}: {types[-3:]}")
            if status in ("failed", "partial_failure") and not data.get("failureReason"):
                violations.append(f"{record_id} ({status}) has no failureReason")
            events = list(zip(types, payloads, strict=True))
            completed = Counter(p.get("stepId") for t, p in events if t == "step_completed")
            artifacts = Counter(
                (p.get("artifact") or {}).get("id") for t, p in events if t == "artifact_created"
            )
            for name, counts in (("step completed", completed), ("artifact", artifacts)):
                twice = [k for k, n in counts.items() if n > 1]
                if twice:
                    violations.append(f"{record_id}: {name} more than once: {twice}")
    return {"records": dict(sorted(statuses.items())), "violations": violations}


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=1800, help="seconds of crashes")
    parser.add_argument(
        "--kill-every", type=float, nargs=2, default=(20, 60), metavar=("MIN", "MAX")
    )
    parser.add_argument("--start-every", type=float, default=1.5, help="seconds between starts")
    parser.add_argument("--settle", type=float, default=300, help="seconds to let records end")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: SQLite in the data dir)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="sogni-soak-"))
    server = Server(data, args.database_url)
    key = json.loads(server.cli("keys", "--json", "create", "--name", "soak"))["key"]
    began = time.monotonic()
    await server.start()
    deadline = began + args.duration
    client, killer = await asyncio.gather(
        _client(server, key, deadline, args.start_every, args.seed),
        _killer(server, deadline, tuple(args.kill_every), args.seed),
    )
    database_url = args.database_url or f"sqlite:///{data / 'sogni.sqlite'}"
    engine = create_engine(_sync_url(database_url))
    settle_began = time.monotonic()
    while _open_records(engine) and time.monotonic() - settle_began < args.settle:
        await asyncio.sleep(1)
    settled_s = time.monotonic() - settle_began
    server.stop()
    checked = _check(engine)
    engine.dispose()
    summary = {
        "duration_s": round(time.monotonic() - began, 1),
        "server_starts": server.starts,
        **killer,
        **client,
        "settle_s": round(settled_s, 1),
        **checked,
        "data_dir": str(data) if args.keep else None,
    }
    print(json.dumps(summary, indent=2))
    if not args.keep:
        subprocess.run(["rm", "-rf", str(data)], check=False)
    return 1 if checked["violations"] or client["wrong_answers"] else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
