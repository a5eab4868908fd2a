"""A worker that dies mid-job and never comes back: its job moves to another worker.

An API process (`serve --no-worker`) and worker A share a fresh PostgreSQL database; a
two-step workflow runs its steps on A, A is SIGKILLed during the second step, and worker B
(another executor id) starts. The supervisor sees A silent and hands its job back to the video
queue; B finishes it, the finished first step is not run again, and every step announces its
end once.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.e2e.conftest import RunningServer, running_server, start_workflow

pytestmark = pytest.mark.slow

TAKEOVER_AFTER_S = 3.0
PLAN = {
    "title": "Takeover",
    "steps": [
        {
            "id": "still",
            "toolName": "generate_image",
            "arguments": {"prompt": "a lighthouse", "width": 512, "height": 512, "seed": 3},
        },
        {
            "id": "clip",
            "toolName": "animate_photo",
            "arguments": {
                "prompt": "slow push in",
                "duration": 10,
                "width": 640,
                "height": 360,
                "seed": 5,
            },
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


def _worker(server: RunningServer, log: Path, executor_id: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sogni_intelligence.cli.main",
                "worker",
                "--queues",
                "image,video",
                "--executor-id",
                executor_id,
            ],
            env=server.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _events(server: RunningServer, workflow_id: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{server.url}/v1/creative-agent/workflows/{workflow_id}/events",
        headers={"Authorization": f"Bearer {server.key}"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["data"]["events"]


def _wait_for(server: RunningServer, workflow_id: str, done: Any, within_s: float) -> float:
    deadline = time.monotonic() + within_s
    while not done(_events(server, workflow_id)):
        assert time.monotonic() < deadline, _events(server, workflow_id)
        time.sleep(0.1)
    return time.monotonic()


async def _job_executors(database_url: str, workflow_id: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT executor_id FROM dbos.workflow_status WHERE parent_workflow_id = $1",
            workflow_id,
        )
    finally:
        await conn.close()
    return [row["executor_id"] for row in rows]


def _step_event(kind: str, step_id: str) -> Any:
    return lambda events: any(
        e["type"] == kind and e["data"].get("stepId") == step_id for e in events
    )


def test_a_dead_workers_job_is_taken_over_by_a_live_one(
    tmp_path: Path, fresh_postgres_url: str
) -> None:
    settings = {
        "SOGNI_DATABASE_URL": fresh_postgres_url,
        "SOGNI_QUEUE_POLL_S": "0.2",
        "SOGNI_HEARTBEAT_S": "0.5",
        "SOGNI_TAKEOVER_AFTER_S": str(TAKEOVER_AFTER_S),
    }
    workers: list[subprocess.Popen[bytes]] = []
    with running_server(tmp_path, "--no-worker", settings=settings) as server:
        try:
            workers.append(_worker(server, tmp_path / "a.log", "worker-a"))
            workflow_id = start_workflow(server, PLAN)

            _wait_for(server, workflow_id, _step_event("step_started", "clip"), 120)
            workers[0].send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            workers.append(_worker(server, tmp_path / "b.log", "worker-b"))
            ended_at = _wait_for(
                server,
                workflow_id,
                lambda events: events[-1]["type"] in ("workflow_completed", "workflow_failed"),
                120,
            )
            events = _events(server, workflow_id)
        finally:
            for worker in workers:
                worker.kill()
                worker.wait(10)

    assert events[-1]["type"] == "workflow_completed", events
    assert events[-1]["status"] == "completed", events
    ends = Counter(e["data"]["stepId"] for e in events if e["type"] == "step_completed")
    assert ends == {"still": 1, "clip": 1}, events
    # The dead worker had run the first job to its end; the second ended on worker B.
    executors = asyncio.run(_job_executors(fresh_postgres_url, workflow_id))
    assert sorted(executors) == ["worker-a", "worker-b"], executors
    # Silent for the takeover time, then a beat, a queue poll and the clip itself.
    assert ended_at - killed_at < 60, ended_at - killed_at
    print(f"kill -> workflow completed on the other worker: {ended_at - killed_at:.1f} s")


def test_a_dead_replicas_workflow_is_taken_over_by_another_replica(
    tmp_path: Path, fresh_postgres_url: str
) -> None:
    """Replica 1 runs the workflow (its steps inside it, as it serves the queues) and is
    SIGKILLed mid-clip; replica 2, on the same database and media directory, takes the
    workflow from the orchestration queue and replays it past the finished first step."""
    settings = {
        "SOGNI_DATABASE_URL": fresh_postgres_url,
        "SOGNI_QUEUE_POLL_S": "0.2",
        "SOGNI_HEARTBEAT_S": "0.5",
        "SOGNI_TAKEOVER_AFTER_S": str(TAKEOVER_AFTER_S),
    }
    with (
        running_server(tmp_path, settings={**settings, "SOGNI_EXECUTOR_ID": "api-1"}) as one,
        running_server(
            tmp_path, settings={**settings, "SOGNI_EXECUTOR_ID": "api-2"}, log_name="two.log"
        ) as two,
    ):
        two.key = one.key  # the same database: the workflow's owner reads it on either
        workflow_id = start_workflow(one, PLAN)
        _wait_for(one, workflow_id, _step_event("step_started", "clip"), 120)
        assert one.process is not None
        one.process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        at_kill = _events(two, workflow_id)
        ended_at = _wait_for(
            two,
            workflow_id,
            lambda events: events[-1]["type"] in ("workflow_completed", "workflow_failed"),
            120,
        )
        events = _events(two, workflow_id)
    assert not _step_event("step_completed", "clip")(at_kill), "the kill missed the clip"
    assert events[-1]["status"] == "completed", events
    ends = Counter(e["data"]["stepId"] for e in events if e["type"] == "step_completed")
    assert ends == {"still": 1, "clip": 1}, events
    print(f"kill -> workflow completed on the other replica: {ended_at - killed_at:.1f} s")
