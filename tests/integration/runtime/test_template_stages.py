"""Template stage kinds run durably over the real routes (DBOS on SQLite and PostgreSQL, real
image tools): an interactive stage's wait and answer (across a restart too), its timeout and
cancellation, a batch
fanned out per item, and what `onError` does to the rest of the workflow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from sogni_intelligence.config import ModelConfig, Settings
from sogni_intelligence.runtime import durable
from sogni_intelligence.runtime.workflows import WorkflowRuntime
from tests.integration.runtime.conftest import app_with_two_keys, runtime_settings
from tests.integration.runtime.test_workflows_api import BASE, Client

pytestmark = pytest.mark.slow
TERMINAL = ("completed", "partial_failure", "failed", "cancelled")


@pytest_asyncio.fixture
async def client(tmp_path: Path, runtime_database_url: str) -> AsyncIterator[Client]:
    settings = Settings(
        data_dir=tmp_path,
        database_url=runtime_database_url,
        models=[ModelConfig(id="up", engine="upstream", base_url="http://127.0.0.1:9/v1")],
        default_model="up",
        workflow_cost_confirmation_units=1000,
    )
    async with app_with_two_keys(settings, 60) as parts:
        yield Client(*parts)


def image(stage_id: str, prompt: str = "a red cube", **extra: Any) -> dict[str, Any]:
    args = {"prompt": prompt, "width": 256, "height": 256}
    return {"type": "fixed", "id": stage_id, "tool": "generate_image", "args": args, **extra}


def broken(stage_id: str, **extra: Any) -> dict[str, Any]:
    """A stage whose tool fails when it runs: the model it names does not exist."""
    stage = image(stage_id, **extra)
    stage["args"]["model"] = "no-such-model"
    return stage


async def run_template(client: Client, stages: list[dict], inputs: dict | None = None) -> str:
    template = {
        "name": "Stages",
        "inputs": [{"name": "shots", "type": "text", "multiple": {"min": 1, "max": 4}}],
        "stages": stages,
    }
    created = await client.http.post(f"{BASE}/templates", json=template, headers=client.auth())
    assert created.status_code == 201, created.text
    template_id = created.json()["data"]["template"]["id"]
    started = await client.start({"workflow_id": template_id, "inputs": inputs or {}})
    assert started.status_code == 201, started.text
    return started.json()["data"]["workflow"]["workflowId"]


async def read(client: Client, workflow_id: str) -> dict[str, Any]:
    response = await client.http.get(f"{BASE}/{workflow_id}", headers=client.auth())
    assert response.status_code == 200, response.text
    return response.json()["data"]["workflow"]


async def wait_for(client: Client, workflow_id: str, *statuses: str) -> dict[str, Any]:
    for _ in range(600):
        workflow = await read(client, workflow_id)
        if workflow["status"] in statuses:
            return workflow
        await asyncio.sleep(0.05)
    raise AssertionError(f"{workflow_id} never reached {statuses}: {workflow['status']}")


async def events(client: Client, workflow_id: str) -> list[dict[str, Any]]:
    response = await client.http.get(f"{BASE}/{workflow_id}/events", headers=client.auth())
    return response.json()["data"]["events"]


async def answer(client: Client, workflow_id: str, body: dict, other: bool = False):
    return await client.http.post(
        f"{BASE}/{workflow_id}/input", json=body, headers=client.auth(other)
    )


QUESTION = {
    "type": "interactive",
    "id": "ask",
    "systemPrompt": "Help the user choose a mood.",
    "userMessage": "Which mood should the picture have?",
}


async def test_an_interactive_stage_waits_for_the_answer_then_goes_on(client: Client) -> None:
    workflow_id = await run_template(client, [QUESTION, image("art", "a $answers.ask harbour")])
    waiting = await wait_for(client, workflow_id, "waiting_for_user", *TERMINAL)
    assert waiting["status"] == "waiting_for_user"
    assert waiting["waitingReason"] == "workflow_user_input_required"
    assert waiting["awaitingInput"]["stepId"] == "ask"
    asked = [e for e in await events(client, workflow_id) if e["type"] == waiting["waitingReason"]]
    assert len(asked) == 1 and asked[0]["status"] == "waiting_for_user"
    assert asked[0]["data"]["question"] == QUESTION["userMessage"]
    assert asked[0]["data"]["timeoutSeconds"] == 24 * 3600
    # the stream closes at the pause
    frames = await client.stream(workflow_id)
    assert frames[-1]["event"] == "workflow_user_input_required"
    # another key cannot see it; a bad body, or the wrong step, is refused
    assert (await answer(client, workflow_id, {"answer": "calm"}, other=True)).status_code == 404
    assert (await answer(client, workflow_id, {"answer": ""})).status_code == 400
    wrong = await answer(client, workflow_id, {"answer": "calm", "stepId": "art"})
    assert wrong.status_code == 409 and "'ask'" in wrong.json()["error"]["message"]
    # the art stage waited for the answer
    assert [s["status"] for s in (await read(client, workflow_id))["steps"]] == [
        "pending",
        "pending",
    ]

    answered = await answer(client, workflow_id, {"answer": "calm", "stepId": "ask"})
    assert answered.status_code == 200, answered.text
    done = await wait_for(client, workflow_id, *TERMINAL)
    assert done["status"] == "completed" and done["waitingReason"] is None
    assert [(s["id"], s["status"]) for s in done["steps"]] == [
        ("ask", "completed"),
        ("art", "completed"),
    ]
    assert done["steps"][0]["answer"] == "calm" and len(done["artifacts"]) == 1
    # the answer filled the later stage's prompt
    asset = await client.app.state.server.workflows.deps.assets.get(done["artifacts"][0]["id"])
    assert asset is not None and asset.meta["prompt"] == "a calm harbour"
    again = await answer(client, workflow_id, {"answer": "calm"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "workflow_not_waiting"


async def test_no_answer_in_time_fails_the_workflow_saying_why(client: Client) -> None:
    workflow_id = await run_template(client, [{**QUESTION, "timeoutSeconds": 1}, image("art")])
    failed = await wait_for(client, workflow_id, *TERMINAL)
    assert failed["status"] == "failed"
    assert failed["failureReason"] == "no answer to step 'ask' within 1 s"
    assert [s["status"] for s in failed["steps"]] == ["failed", "pending"]
    assert failed["artifacts"] == []


async def test_a_workflow_waiting_for_input_can_be_cancelled(client: Client) -> None:
    workflow_id = await run_template(client, [QUESTION, image("art")])
    await wait_for(client, workflow_id, "waiting_for_user")
    cancelled = await client.http.post(
        f"{BASE}/{workflow_id}/cancel", json={"reason": "never mind"}, headers=client.auth()
    )
    assert cancelled.json()["data"]["transitioned"] is True
    await asyncio.sleep(0.3)  # a late step must not move it
    final = await read(client, workflow_id)
    assert final["status"] == "cancelled" and final["cancellationReason"] == "never mind"
    assert (await answer(client, workflow_id, {"answer": "calm"})).status_code == 409


async def test_a_batch_stage_runs_one_step_per_item_in_order(client: Client) -> None:
    batch = {
        "type": "batch",
        "id": "shot",
        "overBinding": "$inputs.shots",
        "itemName": "subject",
        "itemStage": {
            "tool": "generate_image",
            "args": {"prompt": "a photo of ${subject}", "width": 256, "height": 256},
        },
    }
    workflow_id = await run_template(client, [batch], {"shots": ["a boat", "a tree", "a cat"]})
    done = await wait_for(client, workflow_id, *TERMINAL)
    assert done["status"] == "completed", done["failureReason"]
    assert [s["id"] for s in done["steps"]] == ["shot_1", "shot_2", "shot_3"]
    assert [s["arguments"]["prompt"] for s in done["steps"]] == [
        "a photo of a boat",
        "a photo of a tree",
        "a photo of a cat",
    ]
    assert [a["stepId"] for a in done["artifacts"]] == ["shot_1", "shot_2", "shot_3"]


async def test_on_error_skip_skips_the_stage_and_those_needing_its_artifacts(
    client: Client,
) -> None:
    stages = [
        broken("bad", onError="skip", produces=["keyframe"]),
        image("needs", requiredArtifactsIn=["keyframe"]),
        image("free"),
    ]
    workflow_id = await run_template(client, stages)
    done = await wait_for(client, workflow_id, *TERMINAL)
    by_id = {s["id"]: s for s in done["steps"]}
    assert [by_id[i]["status"] for i in ("bad", "needs", "free")] == [
        "skipped",
        "skipped",
        "completed",
    ]
    assert "onError skip" in by_id["bad"]["error"]["message"]
    assert "no-such-model" in by_id["bad"]["error"]["message"]
    assert by_id["needs"]["error"]["message"] == "needs step 'bad', which was skipped"
    assert done["status"] == "completed" and len(done["artifacts"]) == 1
    log = await events(client, workflow_id)
    assert [e["data"]["stepId"] for e in log if e["type"] == "step_skipped"] == ["bad", "needs"]


async def test_a_stage_failing_stops_the_workflow_by_default(client: Client) -> None:
    upscale = {
        "type": "fixed",
        "id": "bigger",
        "tool": "upscale_image",
        "dependsOn": [
            {
                "sourceStepId": "fine",
                "targetArgument": "sourceImageIndex",
                "transform": "image_index",
            }
        ],
    }
    workflow_id = await run_template(client, [broken("bad"), image("fine"), upscale])
    done = await wait_for(client, workflow_id, *TERMINAL)
    assert done["status"] == "failed"
    assert done["failureReason"].startswith("steps did not complete: bad (generate_image) failed")
    assert "no-such-model" in done["failureReason"]
    by_id = {s["id"]: s for s in done["steps"]}
    # `fine` ran beside `bad`; `bigger`, in the next wave, did not run
    assert by_id["fine"]["status"] == "completed" and by_id["bigger"]["status"] == "skipped"
    assert "'bad' failed and stopped the workflow" in by_id["bigger"]["error"]["message"]


async def test_retry_once_tries_a_failing_stage_twice_then_stops(client: Client) -> None:
    stages = [
        broken("bad", onError="retry_once"),
        image("later", requiredArtifactsIn=["k"]),
    ]
    stages[0]["produces"] = ["k"]
    workflow_id = await run_template(client, stages)
    done = await wait_for(client, workflow_id, *TERMINAL)
    assert done["status"] == "failed"
    log = await events(client, workflow_id)
    tries = [e["data"].get("attempt", 1) for e in log if e["type"] == "step_failed"]
    assert tries == [1, 2]
    assert [e["data"]["stepId"] for e in log if e["type"] == "step_started"] == ["bad", "bad"]
    later = next(s for s in done["steps"] if s["id"] == "later")
    assert later["status"] == "skipped" and "stopped the workflow" in later["error"]["message"]


async def test_a_wait_for_input_survives_a_restart(
    runtime: WorkflowRuntime, tmp_path: Path, runtime_database_url: str
) -> None:
    """DBOS is shut down while the workflow waits and launched again (as a restarted process
    would be): it recovers the workflow, which still waits, and the answer then reaches it."""
    plan = {
        "steps": [
            {
                "id": "ask",
                "toolName": "ask_clarifying_question",
                "arguments": {"question": "Square or wide?"},
            },
            {
                "id": "art",
                "toolName": "generate_image",
                "arguments": {"prompt": "a kite", "width": 256, "height": 256},
                "after": ["ask"],
            },
        ]
    }
    record, _ = await runtime.start("key_a", plan, [])
    for _ in range(400):
        record = await runtime.deps.records.get(record.id) or record
        if record.status == "waiting_for_user":
            break
        await asyncio.sleep(0.05)
    assert record.data["awaitingInput"]["question"] == "Square or wide?"
    durable.shutdown()
    await durable.launch(runtime_settings(tmp_path, runtime_database_url))
    await asyncio.sleep(0.5)  # the recovered workflow is back at its wait
    assert (await runtime.deps.records.get(record.id)).status == "waiting_for_user"
    moved = await runtime.answer(record, "wide")
    for _ in range(600):
        moved = await runtime.deps.records.get(record.id) or moved
        if moved.status in TERMINAL:
            break
        await asyncio.sleep(0.05)
    assert moved.status == "completed"
    assert [s["status"] for s in moved.data["steps"]] == ["completed", "completed"]
    log = await runtime.deps.records.events(record.id)
    assert [e.type for e in log].count("workflow_user_input_required") == 1
