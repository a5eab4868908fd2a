"""Durable workflows and templates through the official `sogni-client` SDK, against the real
server process (DBOS on SQLite in its data directory)."""

from __future__ import annotations

import httpx
import pytest
from sogni_client import SogniClient

from tests.e2e.conftest import RunningServer

pytestmark = pytest.mark.slow

PLAN = {
    "title": "Poster and clip",
    "steps": [
        {
            "id": "poster",
            "toolName": "generate_image",
            "arguments": {
                "prompt": "a paper boat on a lake",
                "width": 256,
                "height": 256,
                "seed": 3,
            },
        },
        {
            "id": "clip",
            "toolName": "animate_photo",
            "arguments": {"prompt": "gentle drift", "duration": 2, "width": 256, "height": 256},
            "dependsOn": [
                {
                    "sourceStepId": "poster",
                    "targetArgument": "sourceImageIndex",
                    "transform": "image_index",
                    "mediaType": "image",
                }
            ],
        },
    ],
}


async def _client(server: RunningServer, app_source: str | None = None) -> SogniClient:
    return await SogniClient.create(
        api_key=server.key, rest_endpoint=server.url, disable_socket=True, app_source=app_source
    )


async def test_start_stream_get_list_events_and_download(server: RunningServer) -> None:
    sogni = await _client(server, app_source="sdk-e2e")
    try:
        workflow = await sogni.workflows.start(
            input=PLAN,
            confirm_cost=True,
            idempotency_key="sdk-1",
            token_type="sogni",
            safe_content_filter=False,
        )
        workflow_id = workflow["workflowId"]
        statuses = [
            frame["data"]["status"] async for frame in sogni.workflows.stream_events(workflow_id)
        ]
        assert statuses[-1] == "completed"
        final = await sogni.workflows.get(workflow_id)
        assert final["status"] == "completed" and [a["kind"] for a in final["artifacts"]] == [
            "image",
            "video",
        ]
        video = final["artifacts"][1]
        download = httpx.get(video["url"], timeout=30)  # signed: no key needed
        assert download.status_code == 200 and download.headers["content-type"] == "video/mp4"
        events = await sogni.workflows.events(workflow_id)
        assert [e["sequence"] for e in events] == list(range(len(events)))
        # The record as thick as the contract, read through the SDK.
        assert final["events"] == events and events[0]["type"] == "billing_preview_updated"
        assert final["safeContentFilter"] is False
        assert [s["id"] for s in final["plan"]["steps"]] == ["poster", "clip"]
        assert final["billingPreviews"] == [final["billingPreview"]]
        assert final["billingPreview"]["tokenType"] == "sogni"
        assert (final["scope"]["tokenType"], final["scope"]["appSource"]) == ("sogni", "sdk-e2e")
        account = await sogni.account.me()
        assert final["scope"]["apiKeyFingerprint"] == account["account"]["apiKeyFingerprint"]
        listed = await sogni.workflows.list(limit=10, offset=0)
        assert workflow_id in [w["workflowId"] for w in listed]
        again = await sogni.workflows.start(
            input=PLAN,
            confirm_cost=True,
            idempotency_key="sdk-1",
            token_type="sogni",
            safe_content_filter=False,
        )
        assert again["workflowId"] == workflow_id
        tail = [
            f["id"] async for f in sogni.workflows.stream_events(workflow_id, after=len(events) - 2)
        ]
        assert [int(i) for i in tail] == [len(events) - 1]
    finally:
        await sogni.aclose()


async def test_cancel_resume_and_reseed(server: RunningServer) -> None:
    sogni = await _client(server)
    try:
        slow = {
            "steps": [
                {
                    "toolName": "generate_video",
                    "arguments": {
                        "prompt": "long pan",
                        "duration": 20,
                        "width": 640,
                        "height": 360,
                    },
                }
            ]
        }
        started = await sogni.workflows.start(input=slow, confirm_cost=True)
        cancelled = await sogni.workflows.cancel(started["workflowId"])
        assert cancelled["status"] == "cancelled"
        resumed = await sogni.workflows.resume(started["workflowId"], token_type="sogni")
        assert resumed["resumed"] is False
        # A finished workflow is not billed anew.
        assert resumed["workflow"]["scope"]["tokenType"] is None
        assert len(resumed["workflow"]["billingPreviews"]) == 1
        quick = await sogni.workflows.start(input={"steps": [PLAN["steps"][0]]}, confirm_cost=True)
        async for _ in sogni.workflows.stream_events(quick["workflowId"]):
            pass
        clone = await sogni.workflows.reseed(
            quick["workflowId"], seed_overrides={"poster": 9}, idempotency_key="rs-1"
        )
        assert clone["workflow"]["workflowId"] != quick["workflowId"]
        assert {"stepId": "poster", "newSeed": 9} in clone["reseed"]["steps"]
    finally:
        await sogni.aclose()


async def test_templates_through_the_sdk(server: RunningServer) -> None:
    sogni = await _client(server)
    try:
        template = await sogni.workflows.templates.create(
            {
                "name": "Square art",
                "inputs": [{"name": "subject", "type": "text", "required": True}],
                "stages": [
                    {
                        "type": "fixed",
                        "id": "art",
                        "tool": "generate_image",
                        "args": {"prompt": "$inputs.subject", "width": 256, "height": 256},
                    }
                ],
            }
        )
        page = await sogni.workflows.templates.list(visibility="own", limit=50)
        assert template["id"] in [t["id"] for t in page["templates"]]
        forked = await sogni.workflows.templates.fork(template["id"], new_name="Copy")
        assert forked["name"] == "Copy"
        run = await sogni.workflows.start(
            workflow_id=template["id"], inputs={"subject": "a fox"}, confirm_cost=True
        )
        last = [frame async for frame in sogni.workflows.stream_events(run["workflowId"])][-1]
        assert last["data"]["status"] == "completed"
        await sogni.workflows.templates.delete(forked["id"])
    finally:
        await sogni.aclose()
