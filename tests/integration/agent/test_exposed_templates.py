"""A template saved with `exposeToLLM` is a function tool of the calling key's `creative-agent`
surface (and of no other key or surface); the real default model, forced to call it, starts a
durable run of the template."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.conftest import embedded_settings, in_process_app
from tests.integration.agent.test_hosted_chat import MAX_TOKENS, WORKFLOWS, Api, forced, local

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
TOOL = "template_lantern_poster"
TEMPLATE = {
    "name": "Lantern poster",
    "description": "Paint a poster of a paper lantern over the subject the user names.",
    "exposeToLLM": True,
    "inputs": [
        {"name": "subject", "type": "text", "required": True, "description": "what is painted"}
    ],
    "stages": [
        {
            "type": "fixed",
            "id": "poster",
            "tool": "generate_image",
            "args": {"prompt": "a paper lantern over $inputs.subject", "width": 256, "height": 256},
        }
    ],
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    data: Path = tmp_path_factory.mktemp("exposed-templates")
    settings = embedded_settings(data, n_ctx=8192).model_copy(update={"agent_max_rounds": 2})
    async with in_process_app(settings, timeout_s=600) as running:
        api = Api(running.http, running.app, running.key, running.owner)
        for template in (TEMPLATE, {**TEMPLATE, "name": "Hidden poster", "exposeToLLM": False}):
            created = await api.client.post(
                f"{WORKFLOWS}/templates", json=template, headers=api.auth
            )
            assert created.status_code == 201, created.text
        yield api


async def chat(api: Api, tool: str, **body: Any) -> Any:
    return await api.chat(
        "Make the poster of a harbour at night.",
        tool_choice=forced(tool),
        sogni_tools=body.pop("sogni_tools", "creative-agent"),
        **body,
    )


async def test_the_exposed_template_is_in_the_tool_list_the_model_gets(api: Api) -> None:
    raw = await chat(api, TOOL, sogni_tool_execution=False, max_tokens=MAX_TOKENS)
    assert raw.status_code == 200, raw.text
    choice = raw.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls", choice
    [call] = choice["message"]["tool_calls"]
    assert call["function"]["name"] == TOOL
    assert isinstance(json.loads(call["function"]["arguments"])["subject"], str)


async def test_it_is_offered_only_to_its_key_on_the_creative_agent_surface(api: Api) -> None:
    for refused in (
        await chat(api, "template_hidden_poster"),
        await chat(api, TOOL, sogni_tools="creative-tools"),
        await chat(api, TOOL, headers=await api.other_key()),
    ):
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["param"] == "tool_choice"


async def test_a_call_runs_the_template_as_a_durable_workflow(api: Api) -> None:
    response = await chat(api, TOOL)
    assert response.status_code == 200, response.text
    [result] = response.json()["sogni_tool_results"]
    assert result["toolName"] == TOOL and result["ok"] is True, result
    record = await api.client.get(f"{WORKFLOWS}/{result['workflowId']}", headers=api.auth)
    workflow = record.json()["data"]["workflow"]
    assert workflow["status"] == "completed" and workflow["title"] == TEMPLATE["name"]
    [step] = workflow["steps"]
    assert step["id"] == "poster" and step["toolName"] == "generate_image"
    subject = result["arguments"]["subject"]
    assert step["arguments"]["prompt"] == f"a paper lantern over {subject}"
    [artifact] = workflow["artifacts"]
    image = await api.client.get(local(artifact["url"]))
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
