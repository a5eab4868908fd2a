"""The content filter on every route where tools run, in the whole app: tools/execute,
hosted tool calls of chat completions (run as durable workflows), workflows and chat runs.

The upstream models are the fake upstream over real HTTP: one writes a generate_image call
whose prompt the settings' extra term refuses, the other answers enhance_prompt. The media tool
is the real image renderer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fake_upstream import FakeUpstream

from sogni_intelligence.api.app import create_app
from sogni_intelligence.config import ModelConfig, Settings
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.keys import KeyStore

pytestmark = pytest.mark.asyncio(loop_scope="module")

TERM = "purple elephant"
EXECUTE = "/v1/creative-agent/tools/execute"
WORKFLOWS = "/v1/creative-agent/workflows"
RUNS = "/v1/chat/runs"
ENDED = {"completed", "failed", "partial_failure", "cancelled"}


@dataclass
class Api:
    http: httpx.AsyncClient
    auth: dict[str, str]

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post(path, json=body, headers=self.auth)

    async def ended(self, path: str, key: str) -> dict[str, Any]:
        """Poll a run or workflow until it has ended."""
        for _ in range(600):
            record = (await self.http.get(path, headers=self.auth)).json()["data"][key]
            if record["status"] in ENDED:
                return record
            await asyncio.sleep(0.05)
        raise AssertionError(f"{path} did not end: {record['status']}")

    async def events(self, workflow_id: str) -> list[dict[str, Any]]:
        response = await self.http.get(f"{WORKFLOWS}/{workflow_id}/events", headers=self.auth)
        return response.json()["data"]["events"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(
    tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeUpstream
) -> AsyncIterator[Api]:
    def model(model_id: str, script: str) -> ModelConfig:
        return ModelConfig(
            id=model_id,
            engine="upstream",
            base_url=fake_upstream.url + "/v1",
            upstream_model=script,
        )

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("filter-app"),
        database_url=None,
        models=[model("up-enhance", "script-enhanced"), model("up-draw", "script-filtered")],
        default_model="up-enhance",
        content_filter_extra_terms=[TERM],
        workflow_cost_confirmation_units=1000,
    )
    settings.ensure_data_dir()
    db = Database(settings.resolved_database_url)
    await db.create_all()
    key, _ = await KeyStore(db).create("t")
    await db.close()
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test", timeout=60
        ) as http,
    ):
        yield Api(http, {"Authorization": f"Bearer {key}"})


def _switch(on: bool | None, name: str = "safe_content_filter") -> dict[str, Any]:
    return {} if on is None else {name: on}


@pytest.mark.parametrize("on", [None, True])
async def test_tools_execute_refuses_a_filtered_prompt_with_a_400(
    api: Api, on: bool | None
) -> None:
    prompt = "please draw a Purple Elephant for my nephew"
    arguments = {"prompt": prompt, "target_output": "image_prompt", "destination_model": "z-turbo"}
    response = await api.post(
        EXECUTE, {"tool": "enhance_prompt", "arguments": arguments, **_switch(on)}
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["errorCode"] == 400 and body["error"]["code"] == "content_filtered"
    assert "prompt" in body["message"] and "nephew" not in body["message"]


async def test_tools_execute_runs_with_the_filter_off(api: Api) -> None:
    arguments = {
        "prompt": "a purple elephant",
        "target_output": "image_prompt",
        "destination_model": "z-turbo",
    }
    body = {"tool": "enhance_prompt", "arguments": arguments}
    response = await api.post(EXECUTE, {**body, "safeContentFilter": False})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["result"]["prompt"] == "a purple elephant under soft light"


async def _chat(api: Api, on: bool | None, name: str = "safe_content_filter") -> dict[str, Any]:
    response = await api.post(
        "/v1/chat/completions",
        {
            "model": "up-draw",
            "messages": [{"role": "user", "content": "Draw something."}],
            **_switch(on, name),
        },
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_hosted_tool_call_with_a_filtered_prompt_fails(api: Api) -> None:
    body = await _chat(api, None)
    [result] = body["sogni_tool_results"]
    assert result["ok"] is False and result["error_type"] == "CONTENT_FILTERED"
    assert "prompt" in result["message"]
    [workflow] = body["creative_workflows"]
    assert workflow["status"] == "failed"


@pytest.mark.parametrize("name", ["safe_content_filter", "safeContentFilter"])
async def test_a_hosted_tool_call_runs_with_the_filter_off(api: Api, name: str) -> None:
    body = await _chat(api, False, name)
    [result] = body["sogni_tool_results"]
    assert result["ok"] is True, result
    assert result["media_type"] == "image" and result["urls"]


def _plan(prompt: str) -> dict[str, Any]:
    step = {"toolName": "generate_image", "arguments": {"prompt": prompt, "width": 256}}
    return {"input": {"steps": [step]}}


async def test_a_workflow_step_with_a_filtered_prompt_fails_and_false_runs_it(api: Api) -> None:
    started = await api.post(WORKFLOWS, _plan("A purple  elephant"))
    assert started.status_code == 201, started.text
    workflow_id = started.json()["data"]["workflow"]["workflowId"]
    failed = await api.ended(f"{WORKFLOWS}/{workflow_id}", "workflow")
    assert failed["status"] == "failed"
    [step_failed] = [e for e in await api.events(workflow_id) if e["type"] == "step_failed"]
    assert step_failed["data"]["error"]["errorType"] == "CONTENT_FILTERED"

    started = await api.post(
        WORKFLOWS, {**_plan("A purple elephant"), "safe_content_filter": False}
    )
    workflow_id = started.json()["data"]["workflow"]["workflowId"]
    done = await api.ended(f"{WORKFLOWS}/{workflow_id}", "workflow")
    assert done["status"] == "completed" and done["artifacts"][0]["mimeType"] == "image/png"


@pytest.mark.parametrize(
    ("on", "name", "ok"),
    [
        (None, "safeContentFilter", False),
        (False, "safeContentFilter", True),
        (False, "safe_content_filter", True),
    ],
)
async def test_a_chat_run_follows_its_runtime_config(
    api: Api, on: bool | None, name: str, ok: bool
) -> None:
    body: dict[str, Any] = {
        "model": "up-draw",
        "messages": [{"role": "user", "content": "Draw something."}],
        "sogni_tools": "creative-tools",
        "confirm_cost": True,
        "runtime_config": _switch(on, name),
    }
    started = await api.post(RUNS, body)
    assert started.status_code == 202, started.text
    run = await api.ended(f"{RUNS}/{started.json()['data']['run']['runId']}", "run")
    [result] = run["toolResults"]
    assert result["status"] == ("ok" if ok else "err"), result
    if not ok:
        assert result["errorCode"] == "CONTENT_FILTERED"
