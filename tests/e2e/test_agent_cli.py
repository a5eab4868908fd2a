"""`sogni-agent` as a subprocess against the real server process: every mode, `--json` output,
local uploads, downloads and exit statuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.e2e.conftest import RunningServer

pytestmark = pytest.mark.slow

DEFAULT_MODEL = "qwen3.6-35b-a3b-gguf-iq4xs"
UPSCALE_PLAN = {
    "title": "Upscale the upload",
    "steps": [
        {
            "id": "big",
            "toolName": "upscale_image",
            "arguments": {"sourceImageIndex": -1, "scale": 2},
        }
    ],
}
# 7 images of 2048x2048 are estimated at 28 capacity units, above the server's default
# confirmation threshold of 25, so this plan waits for a cost approval.
COSTLY_PLAN = {
    "steps": [
        {
            "id": "many",
            "toolName": "generate_image",
            "arguments": {
                "prompt": "a red kite over a beach",
                "width": 2048,
                "height": 2048,
                "numberOfVariations": 7,
            },
        }
    ]
}


def agent(server: RunningServer, *args: str, key: str | None = None) -> subprocess.CompletedProcess:
    env = {**server.env, "SOGNI_API_BASE_URL": server.url, "SOGNI_API_KEY": key or server.key}
    env.pop("SOGNI_REST_ENDPOINT", None)
    return subprocess.run(
        [sys.executable, "-m", "sogni_intelligence.agent_cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def json_out(result: subprocess.CompletedProcess) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # the whole of stdout is one JSON document


@pytest.fixture(scope="module")
def upscaled(
    server: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], subprocess.CompletedProcess, Path]:
    """One workflow from a plan file, with a local PNG as `--ref`, watched and downloaded."""
    work = tmp_path_factory.mktemp("agent")
    Image.new("RGB", (320, 256), (200, 30, 30)).save(work / "small.png")
    (work / "plan.json").write_text(json.dumps(UPSCALE_PLAN))
    result = agent(
        server,
        "--api-workflow",
        "--workflow-input",
        f"@{work / 'plan.json'}",
        "--workflow-title",
        "Bigger",
        "--workflow-idempotency-key",
        "agent-cli-upscale",
        "--ref",
        str(work / "small.png"),
        "--watch-workflow",
        "--json",
        "--output",
        str(work / "out"),
    )
    return json_out(result), result, work / "out"


def test_api_chat_json(server: RunningServer) -> None:
    completion = json_out(
        agent(
            server,
            "--api-chat",
            "Say hi.",
            "--api-tools",
            "none",
            "--max-tokens",
            "8",
            "--no-thinking",
            "--system",
            "Answer briefly.",
            "--json",
        )
    )
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["role"] == "assistant"
    assert 1 <= completion["usage"]["completion_tokens"] <= 8


def test_models(server: RunningServer) -> None:
    listed = json_out(agent(server, "--list-api-models", "--json"))
    assert listed["object"] == "list" and DEFAULT_MODEL in [m["id"] for m in listed["data"]]
    card = json_out(agent(server, "--get-api-model", DEFAULT_MODEL, "--json"))
    assert card["id"] == DEFAULT_MODEL and card["object"] == "model"
    human = agent(server, "--list-api-models")
    assert human.returncode == 0
    assert any(line.startswith(f"{DEFAULT_MODEL} ") for line in human.stdout.splitlines())


def test_workflow_from_file_with_uploaded_ref_is_watched_and_downloaded(
    server: RunningServer,
    upscaled: tuple[dict[str, Any], subprocess.CompletedProcess, Path],
) -> None:
    workflow, result, out = upscaled
    assert workflow["status"] == "completed" and workflow["title"] == "Bigger"
    [reference] = workflow["input"]["mediaReferences"]
    assert reference["flag"] == "--ref" and reference["kind"] == "image"
    assert reference["filename"] == "small.png" and reference["url"].startswith(server.url)
    [artifact] = workflow["artifacts"]
    [saved] = list(out.iterdir())
    with Image.open(saved) as image:
        assert image.size == (artifact["width"], artifact["height"]) and image.size[0] > 320
    assert "step big (upscale_image) started" in result.stderr
    assert f"workflow {workflow['workflowId']} completed" in result.stderr


def test_get_events_list_stream_and_resume_of_a_finished_workflow(
    server: RunningServer,
    upscaled: tuple[dict[str, Any], subprocess.CompletedProcess, Path],
) -> None:
    workflow_id = upscaled[0]["workflowId"]
    got = json_out(agent(server, "--get-workflow", workflow_id, "--json"))
    assert got["workflowId"] == workflow_id and got["status"] == "completed"

    events = json_out(agent(server, "--workflow-events", workflow_id, "--json"))["events"]
    assert [e["sequence"] for e in events] == list(range(len(events)))
    assert events[-1]["type"] == "workflow_completed"
    tail = agent(server, "--workflow-events", workflow_id, "--after", str(len(events) - 2))
    assert tail.returncode == 0
    assert tail.stdout.split()[:2] == [str(len(events) - 1), "workflow_completed"]

    listed = json_out(agent(server, "--list-workflows", "--limit", "50", "--json"))
    assert workflow_id in [w["workflowId"] for w in listed["workflows"]]

    streamed = agent(server, "--stream-workflow", workflow_id)
    event_lines = [line for line in streamed.stdout.splitlines() if line[:4].strip().isdigit()]
    assert streamed.returncode == 0 and len(event_lines) == len(events)
    final = json_out(agent(server, "--stream-workflow", workflow_id, "--json"))
    assert final["status"] == "completed"

    resumed = agent(server, "--resume-workflow", workflow_id, "--json")
    assert json_out(resumed)["status"] == "completed" and "nothing to resume" in resumed.stderr


def test_errors_exit_1_with_the_server_message_and_usage_errors_exit_2(
    server: RunningServer, tmp_path: Path
) -> None:
    bad_key = agent(server, "--list-workflows", key="sk-sogni-not-a-key")
    assert bad_key.returncode == 1 and "Invalid API key." in bad_key.stderr
    assert bad_key.stdout == ""
    missing = agent(server, "--get-workflow", "wf_doesnotexist", "--json")
    assert missing.returncode == 1 and "No such workflow." in missing.stderr
    empty = agent(server, "--api-workflow", "--workflow-input", '{"steps": []}')
    assert empty.returncode == 1 and "at least one step" in empty.stderr

    # Usage errors stop before any request; the unit tests cover the other cases.
    usage = [
        ("--list-workflows", "--api-tools", "none"),
        ("--list-workflows", "--list-api-models"),
        ("--api-chat", "hi", "--ref", str(tmp_path / "absent.png")),
    ]
    for args in usage:
        result = agent(server, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert "error:" in result.stderr


def test_cost_ceiling_wait_resume_and_cancel(server: RunningServer) -> None:
    plan = json.dumps(COSTLY_PLAN)
    refused = agent(server, "--api-workflow", "--workflow-input", plan, "--workflow-max-cost", "10")
    assert refused.returncode == 1 and "above the ceiling" in refused.stderr

    start = ("--api-workflow", "--workflow-input", plan, "--workflow-idempotency-key", "costly")
    waiting = json_out(agent(server, *start, "--watch-workflow", "--json"))
    assert waiting["status"] == "waiting_for_user"
    assert waiting["waitingReason"] == "cost_approval_required"
    workflow_id = waiting["workflowId"]
    retried = agent(server, *start, "--json")
    assert json_out(retried)["workflowId"] == workflow_id and "existing workflow" in retried.stderr

    resumed = agent(server, "--resume-workflow", workflow_id, "--json")
    assert json_out(resumed)["status"] in ("queued", "running")
    assert f"workflow {workflow_id} resumed" in resumed.stderr
    cancelled = json_out(agent(server, "--cancel-workflow", workflow_id, "--json"))
    assert cancelled["status"] == "cancelled"
    again = agent(server, "--cancel-workflow", workflow_id)
    assert again.returncode == 0 and "already ended" in again.stderr
    assert f"workflow {workflow_id}: cancelled" in again.stdout


@pytest.fixture
def chat_runs_route(server: RunningServer) -> None:
    """Skip while the server has no durable chat runs: an empty start body is a 400 once the
    route exists, and a 404 (unknown route) before."""
    probe = httpx.post(
        f"{server.url}/v1/chat/runs",
        json={},
        headers={"Authorization": f"Bearer {server.key}"},
        timeout=30,
    )
    if probe.status_code == 404:
        pytest.skip("POST /v1/chat/runs answers 404: durable chat runs are not served yet")


@pytest.mark.usefixtures("chat_runs_route")
def test_durable_chat_follows_the_run_to_its_end(server: RunningServer) -> None:
    result = agent(
        server, "--durable-chat", "Say hi.", "--api-tools", "none", "--max-tokens", "8", "--json"
    )
    run = json_out(result)
    assert run["status"] == "completed" and run["runId"]
    assert f"run {run['runId']} completed" in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == len(set(lines))  # progress is de-duplicated
