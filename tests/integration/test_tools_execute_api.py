"""`POST /v1/creative-agent/tools/execute` in-process on the real default model: the Sogni
envelope, the 400s that name the tool or argument, auth, and drafts the template route takes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.conftest import embedded_settings, in_process_app

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

ROUTE = "/v1/creative-agent/tools/execute"
SIX = (
    "enhance_prompt",
    "compose_script",
    "compose_lyrics",
    "compose_instrumental",
    "compose_workflow",
    "compose_workflow_template",
)


class Api:
    def __init__(self, client: httpx.AsyncClient, key: str) -> None:
        self.client = client
        self.auth = {"api-key": key}

    async def execute(self, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(ROUTE, json=body, headers=self.auth)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    data: Path = tmp_path_factory.mktemp("tools-execute")
    async with in_process_app(embedded_settings(data)) as running:
        yield Api(running.http, running.key)


def _sogni_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error" and body["errorCode"] == status and body["message"]
    return body


async def test_result_comes_in_the_sogni_envelope(api: Api) -> None:
    response = await api.execute(
        {
            "tool": "compose_lyrics",
            "arguments": {"prompt": "rain on a tin roof", "duration_seconds": 30},
            "appSource": "tests",
            "tokenType": "spark",
            "safeContentFilter": False,
        }
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success"
    data = body["data"]
    assert set(data) == {"toolCallId", "tool", "result", "message"}
    assert data["toolCallId"].startswith("call_") and data["tool"] == "compose_lyrics"
    assert data["message"] is None
    result = data["result"]
    assert result["ok"] is True and result["tool"] == "compose_lyrics"
    assert result["lyrics"].startswith("[Verse]\n") and result["suggested_params"]["duration"] == 30


@pytest.mark.parametrize("tool", ["generate_image", "no_such_tool"])
async def test_only_the_six_composition_tools_run_here(api: Api, tool: str) -> None:
    body = _sogni_error(await api.execute({"tool": tool, "arguments": {"prompt": "x"}}), 400)
    assert body["error"]["param"] == "tool" and tool in body["message"]
    assert all(name in body["message"] for name in SIX)


@pytest.mark.parametrize(
    ("tool", "arguments", "param"),
    [
        ("compose_lyrics", {}, "arguments.prompt"),
        ("compose_lyrics", {"prompt": "x", "duration_seconds": 5}, "arguments.duration_seconds"),
        ("enhance_prompt", {"prompt": "x", "target_output": "poster"}, "arguments.target_output"),
        ("compose_script", {"brief": "x", "mood": "sad"}, "arguments.mood"),
        ("compose_workflow", {"brief": "x", "scene_count": 13}, "arguments.scene_count"),
    ],
)
async def test_bad_arguments_are_a_400_naming_the_argument(
    api: Api, tool: str, arguments: dict[str, Any], param: str
) -> None:
    body = _sogni_error(await api.execute({"tool": tool, "arguments": arguments}), 400)
    assert body["error"]["param"] == param and body["message"].startswith(f"{param}: ")


async def test_unknown_destination_model_is_a_400_listing_known_ids(api: Api) -> None:
    arguments = {"prompt": "x", "target_output": "image_prompt", "destination_model": "dall-e"}
    response = await api.execute({"tool": "enhance_prompt", "arguments": arguments})
    body = _sogni_error(response, 400)
    assert body["message"].startswith("destination_model: unknown image model 'dall-e'")
    assert "z-turbo" in body["message"] and body["error"]["code"] == "parameter_invalid"


async def test_a_body_without_tool_is_a_400(api: Api) -> None:
    body = _sogni_error(await api.execute({"arguments": {}}), 400)
    assert body["error"]["param"] == "tool"


@pytest.mark.parametrize("headers", [{}, {"api-key": "sk-sogni-wrong"}])
async def test_a_valid_key_is_required(api: Api, headers: dict[str, str]) -> None:
    response = await api.client.post(
        ROUTE, json={"tool": "compose_lyrics", "arguments": {"prompt": "x"}}, headers=headers
    )
    _sogni_error(response, 401)


async def test_composed_plans_and_drafts_are_accepted_as_they_are(api: Api) -> None:
    arguments = {"brief": "a kite over a beach", "scene_count": 2, "duration_seconds": 4}
    response = await api.execute({"tool": "compose_workflow", "arguments": arguments})
    assert response.status_code == 200, response.text
    plan = response.json()["data"]["result"]
    started = await api.client.post(
        "/v1/creative-agent/workflows",
        json={"input": {"title": plan["title"], "steps": plan["steps"]}, "confirm_cost": True},
        headers=api.auth,
    )
    assert started.status_code == 201, started.text
    workflow = started.json()["data"]["workflow"]
    assert [step["id"] for step in workflow["steps"]] == [step["id"] for step in plan["steps"]]
    cancelled = await api.client.post(
        f"/v1/creative-agent/workflows/{workflow['workflowId']}/cancel", json={}, headers=api.auth
    )
    assert cancelled.status_code == 200, cancelled.text

    response = await api.execute(
        {"tool": "compose_workflow_template", "arguments": {**arguments, "name": "Kites"}}
    )
    assert response.status_code == 200, response.text
    draft = response.json()["data"]["result"]["template_draft"]
    saved = await api.client.post(
        "/v1/creative-agent/workflows/templates", json=draft, headers=api.auth
    )
    assert saved.status_code == 201, saved.text
    template = saved.json()["data"]["template"]
    assert template["name"] == "Kites" and len(template["stages"]) == len(draft["stages"])
