"""`sogni-agent`'s long-job and replay modes against the real server process: `--detach`,
`--status`, `--result [--wait]`, `--recent`, `--doctor`, the `--json` failure object and
`--ingest-replay`/`--list-replays`/`--get-replay`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningServer, free_port
from tests.e2e.test_agent_cli import COSTLY_PLAN, agent, json_out

pytestmark = pytest.mark.slow

#: Two quick steps on the CPU renderer: a small image, then that image upscaled.
TWO_STEPS = {
    "title": "Kite, bigger",
    "steps": [
        {
            "id": "kite",
            "toolName": "generate_image",
            "arguments": {"prompt": "a kite over dunes", "width": 256, "height": 256, "seed": 3},
        },
        {
            "id": "big",
            "toolName": "upscale_image",
            "arguments": {"scale": 2},
            "dependsOn": [
                {
                    "sourceStepId": "kite",
                    "targetArgument": "sourceImageIndex",
                    "transform": "image_index",
                }
            ],
        },
    ],
}


def failure_of(result, exit_status: int = 1) -> dict:
    """The `--json` failure object, which must be the whole of stdout."""
    assert result.returncode == exit_status, result.stderr
    failure = json.loads(result.stdout)
    assert failure["success"] is False and set(failure) >= {
        "error",
        "errorCode",
        "retryable",
        "hint",
    }
    return failure


def test_detached_workflow_then_status_then_result_wait(
    server: RunningServer, tmp_path: Path
) -> None:
    started = agent(server, "--api-workflow", "--workflow-input", json.dumps(TWO_STEPS), "--detach")
    assert started.returncode == 0, started.stderr
    workflow_id = started.stdout.strip()
    assert workflow_id.startswith("wf_") and f"--result {workflow_id} --wait" in started.stderr

    status = json_out(agent(server, "--status", workflow_id, "--json"))
    assert status["workflowId"] == workflow_id and status["title"] == "Kite, bigger"
    human = agent(server, "--status", workflow_id)
    assert human.returncode == 0 and f"workflow {workflow_id}:" in human.stdout

    waited = agent(server, "--result", workflow_id, "--wait", "--json", "--output", str(tmp_path))
    record = json_out(waited)
    assert record["status"] == "completed" and len(record["artifacts"]) == 2
    assert len(list(tmp_path.iterdir())) == 2

    urls = agent(server, "--result", workflow_id, "-q")
    assert urls.returncode == 0 and urls.stderr == ""
    assert sum(server.url in line for line in urls.stdout.splitlines()) == 2

    recent = json_out(agent(server, "--recent", "1", "--json"))
    ids = [item["id"] for item in recent["records"]]
    assert workflow_id in ids and recent["hours"] == 1
    created = [item["createdAt"] for item in recent["records"]]
    assert created == sorted(created, reverse=True)
    failed_only = json_out(agent(server, "--recent", "--status-filter", "failed", "--json"))
    assert workflow_id not in [item["id"] for item in failed_only["records"]]
    listed = agent(server, "--recent")
    assert any(line.startswith(f"{workflow_id}  workflow") for line in listed.stdout.splitlines())


def test_result_of_unfinished_work_exits_3(server: RunningServer) -> None:
    plan = json.dumps(COSTLY_PLAN)
    started = json_out(
        agent(server, "--api-workflow", "--workflow-input", plan, "--detach", "--json")
    )
    workflow_id = started["workflowId"]
    # The plan pauses for a cost approval: `--wait` returns at the pause, still unfinished.
    for extra in ((), ("--wait",)):
        failure = failure_of(agent(server, "--result", workflow_id, *extra, "--json"), 3)
        assert failure["errorCode"] == "not_finished" and failure["id"] == workflow_id
    assert failure["status"] == "waiting_for_user" and "--resume-workflow" in failure["hint"]
    human = agent(server, "--result", workflow_id)
    assert human.returncode == 3 and "not finished yet (status waiting_for_user)" in human.stderr
    assert human.stdout == ""
    agent(server, "--cancel-workflow", workflow_id)


def test_detached_run_and_its_result(server: RunningServer) -> None:
    chat = ("--durable-chat", "Say hi.", "--api-tools", "none", "--max-tokens", "8")
    started = json_out(agent(server, *chat, "--detach", "--json"))
    run_id = started["runId"]
    assert started["status"] in ("queued", "running", "completed")
    waited = agent(server, "--result", run_id, "--wait")
    assert waited.returncode == 0, waited.stderr
    assert f"run {run_id}: completed" in waited.stdout
    status = agent(server, "--status", run_id)
    assert status.returncode == 0 and f"--result {run_id}" in status.stdout


def test_doctor_passes_and_names_a_wrong_key(server: RunningServer) -> None:
    report = json_out(agent(server, "--doctor", "--json"))
    assert report["success"] is True
    assert [c["name"] for c in report["checks"]] == [
        "server",
        "key",
        "models",
        "completion",
        "upload",
    ]
    assert all(c["ok"] and c["hint"] is None for c in report["checks"])

    wrong = agent(server, "--doctor", "--json", key="sk-sogni-not-a-key")
    assert wrong.returncode == 1
    checks = {c["name"]: c for c in json.loads(wrong.stdout)["checks"]}
    assert checks["server"]["ok"] and not checks["key"]["ok"]
    assert "SOGNI_API_KEY" in checks["key"]["hint"] and checks["models"]["detail"].startswith(
        "not run"
    )
    human = agent(server, "--doctor", key="sk-sogni-not-a-key")
    assert human.returncode == 1 and "FAIL  key" in human.stdout and "hint:" in human.stdout


def test_json_failure_objects(server: RunningServer) -> None:
    missing = failure_of(agent(server, "--status", "wf_doesnotexist", "--json"))
    assert missing["retryable"] is False and "--recent" in missing["hint"]
    bad_key = failure_of(agent(server, "--recent", "--json", key="sk-sogni-not-a-key"))
    assert bad_key["errorCode"] == "invalid_api_key" and "SOGNI_API_KEY" in bad_key["hint"]
    nowhere = f"http://127.0.0.1:{free_port()}"
    refused = failure_of(agent(server, "--recent", "--json", "--api-base-url", nowhere))
    assert refused["errorCode"] == "unreachable" and refused["retryable"] is True
    assert "--api-base-url" in refused["hint"]
    usage = failure_of(agent(server, "--status", "nope", "--json"), 2)
    assert usage["errorCode"] == "usage"


def test_replays_ingest_list_and_get(server: RunningServer, tmp_path: Path) -> None:
    record = {
        "run_id": "cli-replay-1",
        "model_id": "qwen3.6-35b-a3b-gguf-iq4xs",
        "user_request": "draw a fox",
        "final_response": "a fox, drawn",
        "rounds": [{"round": 0, "tool_calls": [{"id": "c1", "name": "generate_image"}]}],
    }
    (tmp_path / "record.json").write_text(json.dumps(record))
    stored = json_out(agent(server, "--ingest-replay", str(tmp_path / "record.json"), "--json"))
    assert stored["runId"] == "cli-replay-1" and stored["redacted"] is True

    listed = json_out(agent(server, "--list-replays", "--limit", "5", "--json"))
    [summary] = [r for r in listed["records"] if r["runId"] == "cli-replay-1"]
    assert summary["userRequest"] == "draw a fox" and summary["rounds"] == 1
    human = agent(server, "--list-replays")
    assert any(line.startswith("cli-replay-1 ") for line in human.stdout.splitlines())

    got = json_out(agent(server, "--get-replay", "cli-replay-1", "--json"))
    assert got["record"]["final_response"] == "a fox, drawn" and got["createTime"]
    shown = agent(server, "--get-replay", "cli-replay-1")
    assert "  round 0  1 tool calls: generate_image" in shown.stdout

    missing = failure_of(agent(server, "--get-replay", "no-such-run", "--json"))
    assert missing["errorCode"] == "not_found" and "No such replay record." in missing["error"]
    (tmp_path / "nameless.json").write_text('{"rounds": []}')
    bad = failure_of(agent(server, "--ingest-replay", str(tmp_path / "nameless.json"), "--json"), 2)
    assert "has no run_id" in bad["error"]


def test_fork_run_continues_a_finished_run(server: RunningServer) -> None:
    first = agent(server, "--durable-chat", "Name a colour.", "--max-tokens", "8", "--json")
    run = json_out(first)
    last = run["events"][-1]["sequence"]
    forked = agent(
        server,
        "--fork-run",
        run["runId"],
        "And a fruit?",
        "--after",
        str(last),
        "--max-tokens",
        "8",
        "--json",
    )
    fork = json_out(forked)
    assert fork["runId"] != run["runId"] and fork["status"] == "completed"
    assert fork["request"]["forkFrom"] == {"runId": run["runId"], "afterSequence": last}
    assert fork["messages"][0] == {"role": "user", "content": "And a fruit?"}
    # Without a new message after the answer, the server says what is missing.
    refused = agent(server, "--fork-run", run["runId"], "--after", str(last), "--json")
    assert "add a message" in failure_of(refused)["error"]
    assert (
        failure_of(agent(server, "--fork-run", run["runId"], "--json"), 2)["errorCode"] == "usage"
    )
