"""An API process that only enqueues (`serve --no-worker`) and a separate
`sogni-intelligence worker` process that runs the media jobs, sharing the data directory."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningServer, running_server, start_workflow

pytestmark = pytest.mark.slow

PLAN = {
    "title": "One image",
    "steps": [
        {
            "id": "poster",
            "toolName": "generate_image",
            "arguments": {"prompt": "a kite over dunes", "width": 256, "height": 256, "seed": 9},
        }
    ],
}


def _get(server: RunningServer, path: str) -> dict[str, Any]:
    response = httpx.get(
        f"{server.url}{path}", headers={"Authorization": f"Bearer {server.key}"}, timeout=10
    )
    response.raise_for_status()
    return response.json()["data"]


def _event_types(server: RunningServer, workflow_id: str) -> list[str]:
    events = _get(server, f"/v1/creative-agent/workflows/{workflow_id}/events")["events"]
    return [event["type"] for event in events]


def _start_worker(server: RunningServer, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "sogni_intelligence.cli.main", "worker", *args],
            env=server.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_jobs_wait_for_a_worker_of_their_queue(tmp_path: Path) -> None:
    with running_server(tmp_path, "--no-worker") as server:
        workflow_id = start_workflow(server, PLAN)

        # The workflow itself runs in the API process; its step waits on the image queue.
        deadline = time.monotonic() + 10
        while "workflow_started" not in _event_types(server, workflow_id):
            assert time.monotonic() < deadline, "the workflow never started"
            time.sleep(0.1)
        time.sleep(1.5)  # several queue polls (every 200 ms): nobody may take the job
        assert "step_started" not in _event_types(server, workflow_id)

        # A worker for another queue does not take it either.
        audio_worker = _start_worker(server, tmp_path / "audio.log", "--queues", "audio")
        image_worker = None
        try:
            time.sleep(2.5)
            assert audio_worker.poll() is None, (tmp_path / "audio.log").read_text()
            assert "step_started" not in _event_types(server, workflow_id)

            image_worker = _start_worker(
                server, tmp_path / "image.log", "--queues", "image", "--executor-id", "w-image"
            )
            deadline = time.monotonic() + 60
            while (workflow := _get(server, f"/v1/creative-agent/workflows/{workflow_id}"))[
                "workflow"
            ]["status"] not in ("completed", "failed", "partial_failure"):
                assert time.monotonic() < deadline, (tmp_path / "image.log").read_text()
                time.sleep(0.2)
        finally:
            for worker in (audio_worker, image_worker):
                if worker is not None:
                    worker.terminate()
        assert workflow["workflow"]["status"] == "completed", workflow
        [artifact] = workflow["workflow"]["artifacts"]
        image = httpx.get(artifact["url"], timeout=10)
        assert image.status_code == 200 and image.content[:4] == b"\x89PNG"
        assert (artifact["width"], artifact["height"]) == (256, 256)
        # SIGTERM stops a worker cleanly.
        assert image_worker.wait(20) == 0, (tmp_path / "image.log").read_text()
        assert audio_worker.wait(20) == 0
        assert "w-image serving image" in (tmp_path / "image.log").read_text()


def test_worker_refuses_unknown_queues(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sogni_intelligence.cli.main", "worker", "--queues", "image,gpu"],
        env={"SOGNI_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "unknown queue(s) gpu" in done.stderr
