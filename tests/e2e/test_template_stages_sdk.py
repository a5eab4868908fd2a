"""A template with an interactive stage and a batch stage through the official `sogni-client`
SDK against the real server process: the SDK's event stream ends at the pause, the answer goes
to `POST .../input` over plain HTTP (the SDK has no call for it), and a second stream follows
the run to its end."""

from __future__ import annotations

import httpx
import pytest
from sogni_client import SogniClient

from tests.e2e.conftest import RunningServer

pytestmark = pytest.mark.slow

TEMPLATE = {
    "name": "Asked series",
    "inputs": [{"name": "places", "type": "text", "multiple": {"min": 1, "max": 3}}],
    "stages": [
        {
            "type": "interactive",
            "id": "ask",
            "systemPrompt": "Ask for the time of day.",
            "userMessage": "Morning or night?",
        },
        {
            "type": "batch",
            "id": "shot",
            "overBinding": "$inputs.places",
            "itemName": "place",
            "itemStage": {
                "tool": "generate_image",
                "args": {"prompt": "$place at $answers.ask", "width": 256, "height": 256},
            },
        },
    ],
}


async def test_an_asked_batch_runs_through_the_sdk_and_the_input_route(
    server: RunningServer,
) -> None:
    sogni = await SogniClient.create(
        api_key=server.key, rest_endpoint=server.url, disable_socket=True
    )
    try:
        template = await sogni.workflows.templates.create(TEMPLATE)
        run = await sogni.workflows.start(
            workflow_id=template["id"], inputs={"places": ["a pier", "a hill"]}, confirm_cost=True
        )
        workflow_id = run["workflowId"]
        paused = [frame async for frame in sogni.workflows.stream_events(workflow_id)]
        assert paused[-1]["data"]["status"] == "waiting_for_user"
        assert paused[-1]["data"]["type"] == "workflow_user_input_required"
        assert paused[-1]["data"]["data"]["question"] == "Morning or night?"

        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            answered = await http.post(
                f"/v1/creative-agent/workflows/{workflow_id}/input",
                json={"answer": "night", "stepId": "ask"},
                headers={"Authorization": f"Bearer {server.key}"},
            )
        assert answered.status_code == 200, answered.text

        after = paused[-1]["data"]["sequence"]
        rest = [frame async for frame in sogni.workflows.stream_events(workflow_id, after=after)]
        assert rest[-1]["data"]["status"] == "completed"
        done = await sogni.workflows.get(workflow_id)
        assert [s["id"] for s in done["steps"]] == ["ask", "shot_1", "shot_2"]
        assert [a["stepId"] for a in done["artifacts"]] == ["shot_1", "shot_2"]
    finally:
        await sogni.aclose()
