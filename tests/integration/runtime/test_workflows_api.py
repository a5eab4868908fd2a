"""The workflow and template routes in-process: envelopes, SSE, idempotency, ownership."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from sogni_intelligence.config import ModelConfig, Settings
from tests.integration.runtime.conftest import app_with_two_keys

pytestmark = pytest.mark.slow
BASE = "/v1/creative-agent/workflows"
PLAN = {
    "title": "Two images",
    "steps": [
        {
            "id": "a",
            "toolName": "generate_image",
            "arguments": {"prompt": "red cube", "width": 256, "height": 256},
        },
        {
            "id": "b",
            "toolName": "upscale_image",
            "arguments": {"scale": 2},
            "dependsOn": [
                {
                    "sourceStepId": "a",
                    "targetArgument": "sourceImageIndex",
                    "transform": "image_index",
                }
            ],
        },
    ],
}


class Client:
    def __init__(self, app: FastAPI, http: httpx.AsyncClient, key: str, other: str) -> None:
        self.app, self.http, self.key, self.other = app, http, key, other

    def auth(self, other: bool = False) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.other if other else self.key}"}

    async def start(self, body: dict, **headers: str) -> httpx.Response:
        return await self.http.post(BASE, json=body, headers={**self.auth(), **headers})

    async def stream(self, workflow_id: str, **headers: str) -> list[dict]:
        response = await self.http.get(
            f"{BASE}/{workflow_id}/events/stream", headers={**self.auth(), **headers}
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = []
        for block in response.text.split("\n\n"):
            fields = dict(
                line.split(": ", 1)
                for line in block.splitlines()
                if line and not line.startswith(":")
            )
            if fields:
                frames.append(
                    {
                        "id": int(fields["id"]),
                        "event": fields["event"],
                        "data": json.loads(fields["data"]),
                    }
                )
        return frames


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


async def test_start_stream_get_events_list(client: Client) -> None:
    started = await client.start({"input": PLAN})
    assert started.status_code == 201, started.text
    body = started.json()
    assert body["status"] == "success"
    workflow = body["data"]["workflow"]
    assert workflow["workflowId"].startswith("wf_") and workflow["status"] == "queued"
    assert [s["id"] for s in workflow["steps"]] == ["a", "b"] and workflow["backbone"][
        "schemaVersion"
    ]
    frames = await client.stream(workflow["workflowId"])
    assert [f["id"] for f in frames] == list(range(len(frames)))
    assert (
        frames[-1]["event"] == "workflow_completed" and frames[-1]["data"]["status"] == "completed"
    )
    assert frames[0]["event"] == "billing_preview_updated"
    assert [f["data"]["status"] for f in frames[:2]] == ["queued", "running"]
    assert all(f["data"]["status"] in ("running", "completed") for f in frames[1:])
    assert frames[0]["data"]["workflowId"] == workflow["workflowId"]
    # replay after a cursor, by header and by query (the query wins)
    last = frames[-1]["id"]
    tail = await client.stream(workflow["workflowId"], **{"Last-Event-ID": str(last - 2)})
    assert [f["id"] for f in tail] == [last - 1, last]
    done = (
        await client.http.get(f"{BASE}/{workflow['workflowId']}", headers=client.auth())
    ).json()["data"]["workflow"]
    assert done["status"] == "completed" and len(done["artifacts"]) == 2
    assert done["artifacts"][1]["mimeType"] == "image/png" and done["artifacts"][1]["width"] == 512
    events = (
        await client.http.get(f"{BASE}/{workflow['workflowId']}/events", headers=client.auth())
    ).json()["data"]["events"]
    assert [e["sequence"] for e in events] == [f["id"] for f in frames]
    after = (
        await client.http.get(
            f"{BASE}/{workflow['workflowId']}/events?after=3", headers=client.auth()
        )
    ).json()
    assert after["data"]["events"][0]["sequence"] == 4
    listed = (await client.http.get(f"{BASE}?limit=5", headers=client.auth())).json()["data"]
    assert [w["workflowId"] for w in listed["workflows"]] == [workflow["workflowId"]] and listed[
        "next"
    ] is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"input": PLAN, "workflow_id": "tpl_x"},
        {"input": {"steps": []}},
        {"input": {"steps": [{"toolName": "compose_script", "arguments": {}}]}},
        {
            "input": {
                "steps": [
                    {"toolName": "generate_image", "arguments": {"prompt": "x", "width": "wide"}}
                ]
            }
        },
        {
            "input": PLAN,
            "media_references": [{"kind": "image", "url": "data:image/png;base64,AAAA"}],
        },
        {"input": PLAN, "max_estimated_capacity_units": 0.1},
    ],
)
async def test_bad_starts_are_400_in_the_sogni_shape(client: Client, body: dict) -> None:
    response = await client.start(body)
    assert response.status_code == 400, response.text
    payload = response.json()
    assert payload["status"] == "error" and payload["errorCode"] == 400 and payload["message"]


async def test_idempotency_and_ownership(client: Client) -> None:
    first = await client.start({"input": PLAN}, **{"Idempotency-Key": "k-1"})
    again = await client.start({"input": PLAN}, **{"Idempotency-Key": "k-1"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["data"]["idempotent"] is True
    workflow_id = first.json()["data"]["workflow"]["workflowId"]
    assert again.json()["data"]["workflow"]["workflowId"] == workflow_id
    changed = await client.start(
        {"input": {**PLAN, "title": "other"}}, **{"Idempotency-Key": "k-1"}
    )
    assert changed.status_code == 409
    for path in ("", "/events", "/events/stream"):
        response = await client.http.get(
            f"{BASE}/{workflow_id}{path}", headers=client.auth(other=True)
        )
        assert response.status_code == 404
    cancel = await client.http.post(
        f"{BASE}/{workflow_id}/cancel", json={}, headers=client.auth(other=True)
    )
    assert cancel.status_code == 404
    await client.stream(workflow_id)


async def test_concurrent_starts_with_one_key_make_one_workflow(client: Client) -> None:
    responses = await asyncio.gather(
        *(client.start({"input": PLAN}, **{"Idempotency-Key": "race"}) for _ in range(8))
    )
    assert sorted(r.status_code for r in responses) == [200] * 7 + [201], [
        r.text for r in responses
    ]
    ids = {r.json()["data"]["workflow"]["workflowId"] for r in responses}
    assert len(ids) == 1
    listed = (await client.http.get(BASE, headers=client.auth())).json()["data"]["workflows"]
    assert [w["workflowId"] for w in listed] == list(ids)
    # The key belongs to its owner: another key starts its own workflow with it.
    other = await client.http.post(
        BASE, json={"input": PLAN}, headers={**client.auth(other=True), "Idempotency-Key": "race"}
    )
    assert other.status_code == 201 and other.json()["data"]["workflow"]["workflowId"] not in ids


async def test_cost_confirmation_with_idempotent_retries(client: Client) -> None:
    client.app.state.server.workflows.approval_threshold = 0.5
    workflow_id = (await client.start({"input": PLAN})).json()["data"]["workflow"]["workflowId"]
    frames = await client.stream(workflow_id)  # the stream closes while it waits for the user
    assert frames[-1]["event"] == "workflow_waiting_for_user"
    assert frames[-1]["data"]["data"]["reason"] == "cost_approval_required"
    url = f"{BASE}/{workflow_id}/confirm-cost"
    waiting = (await client.http.get(f"{BASE}/{workflow_id}", headers=client.auth())).json()
    preview = waiting["data"]["workflow"]["billingPreview"]
    assert waiting["data"]["workflow"]["awaitingCostApproval"] is True
    assert (
        preview["estimatedCapacityUnits"] == waiting["data"]["workflow"]["estimatedCapacityUnits"]
    )

    missing = await client.http.post(url, json={}, headers=client.auth())
    assert missing.status_code == 400
    stale = {**preview, "estimatedCapacityUnits": preview["estimatedCapacityUnits"] + 1}
    changed = await client.http.post(
        url, json={"acceptedCostPreview": stale}, headers=client.auth()
    )
    assert changed.status_code == 409
    assert (
        await client.http.post(url, json={}, headers=client.auth(other=True))
    ).status_code == 404

    headers = {**client.auth(), "Idempotency-Key": "confirm-1"}
    body = {"acceptedCostPreview": preview}
    first = await client.http.post(url, json=body, headers=headers)
    assert first.status_code == 200 and first.json()["data"]["confirmed"] is True
    assert "idempotent" not in first.json()["data"]
    retry = await client.http.post(url, json=body, headers=headers)
    assert retry.status_code == 200 and retry.json()["data"]["idempotent"] is True
    reused = await client.http.post(url, json={**body, "decision": "cancel"}, headers=headers)
    assert reused.status_code == 409
    frames = await client.stream(workflow_id, **{"Last-Event-ID": str(frames[-1]["id"])})
    assert frames[-1]["event"] == "workflow_completed"
    assert [f["event"] for f in frames].count("workflow_progress") >= 1


async def test_cancel_and_resume_envelopes(client: Client) -> None:
    slow = {
        "input": {
            "steps": [
                {
                    "toolName": "generate_video",
                    "arguments": {"prompt": "x", "duration": 20, "width": 640, "height": 360},
                }
            ]
        }
    }
    workflow_id = (await client.start(slow)).json()["data"]["workflow"]["workflowId"]
    cancel = await client.http.post(
        f"{BASE}/{workflow_id}/cancel", json={"reason": "stop"}, headers=client.auth()
    )
    assert cancel.status_code == 200 and cancel.json()["data"]["transitioned"] is True
    assert cancel.json()["data"]["workflow"]["status"] == "cancelled"
    again = await client.http.post(f"{BASE}/{workflow_id}/cancel", json={}, headers=client.auth())
    assert again.json()["data"]["transitioned"] is False
    resume = await client.http.post(f"{BASE}/{workflow_id}/resume", json={}, headers=client.auth())
    assert resume.status_code == 202 and resume.json()["data"]["resumed"] is False
    frames = await client.stream(workflow_id)
    assert (
        frames[-1]["event"] == "workflow_cancelled" and frames[-1]["data"]["status"] == "cancelled"
    )


async def test_templates_crud_fork_and_run(client: Client) -> None:
    template = {
        "name": "Poster",
        "inputs": [
            {"name": "subject", "type": "text", "required": True},
            {"name": "size", "type": "number", "default": 256},
        ],
        "stages": [
            {
                "type": "fixed",
                "id": "art",
                "tool": "generate_image",
                "args": {
                    "prompt": "poster of $inputs.subject",
                    "width": "$inputs.size",
                    "height": "$inputs.size",
                },
            }
        ],
    }
    created = await client.http.post(f"{BASE}/templates", json=template, headers=client.auth())
    assert created.status_code == 201, created.text
    tpl = created.json()["data"]["template"]
    assert tpl["id"].startswith("tpl_") and tpl["name"] == "Poster"
    assert (
        await client.http.get(f"{BASE}/templates/{tpl['id']}", headers=client.auth(other=True))
    ).status_code == 404
    listed = (
        await client.http.get(f"{BASE}/templates?visibility=own", headers=client.auth())
    ).json()["data"]
    assert [t["id"] for t in listed["templates"]] == [tpl["id"]]
    patched = await client.http.patch(
        f"{BASE}/templates/{tpl['id']}", json={"visibility": "public"}, headers=client.auth()
    )
    assert patched.json()["data"]["template"]["version"] == 2
    forked = await client.http.post(
        f"{BASE}/templates/{tpl['id']}/fork",
        json={"newName": "Mine"},
        headers=client.auth(other=True),
    )
    assert forked.status_code == 201 and forked.json()["data"]["template"]["name"] == "Mine"
    missing_input = await client.start({"workflow_id": tpl["id"], "inputs": {}})
    assert missing_input.status_code == 400
    run = await client.start({"workflow_id": tpl["id"], "inputs": {"subject": "a cat"}})
    assert run.status_code == 201, run.text
    steps = run.json()["data"]["workflow"]["steps"]
    assert steps[0]["arguments"] == {"prompt": "poster of a cat", "width": 256, "height": 256}
    frames = await client.stream(run.json()["data"]["workflow"]["workflowId"])
    assert frames[-1]["data"]["status"] == "completed"
    deleted = await client.http.delete(f"{BASE}/templates/{tpl['id']}", headers=client.auth())
    assert deleted.status_code == 200
    assert (
        await client.http.get(f"{BASE}/templates/{tpl['id']}", headers=client.auth())
    ).status_code == 404


async def test_record_fields_billing_headers_and_resume_overrides(client: Client) -> None:
    client.app.state.server.workflows.approval_threshold = 0.5  # so it waits for a resume
    started = await client.start(
        {"input": PLAN, "token_type": "spark", "safe_content_filter": False},
        **{"X-Token-Type": "sogni", "X-App-Source": "header-app"},
    )
    assert started.status_code == 201, started.text
    workflow = started.json()["data"]["workflow"]
    workflow_id = workflow["workflowId"]
    assert workflow["safeContentFilter"] is False
    me = (await client.http.get("/v1/account/me", headers=client.auth())).json()["data"]
    scope = workflow["scope"]
    assert scope["apiKeyFingerprint"] == me["account"]["apiKeyFingerprint"]
    assert scope["apiKeyFingerprint"] not in client.key and client.key[-8:] not in str(workflow)
    # The body's token type wins over its header; the header's app source stands in for the
    # body's missing one.
    assert (scope["tokenType"], scope["appSource"]) == ("spark", "header-app")
    assert [s["id"] for s in workflow["plan"]["steps"]] == ["a", "b"]
    preview = workflow["billingPreview"]
    assert workflow["billingPreviews"] == [preview] and preview["tokenType"] == "spark"
    assert (
        preview["estimatedCapacityUnits"]
        == workflow["estimatedCapacityUnits"]
        == sum(s["estimatedCapacityUnits"] for s in preview["steps"])
    )
    created = workflow["events"][0]  # the workflow may have started by the snapshot
    assert (created["sequence"], created["type"]) == (0, "billing_preview_updated")
    assert created["data"]["billingPreview"] == preview

    frames = await client.stream(workflow_id)
    assert frames[-1]["data"]["status"] == "waiting_for_user"
    url = f"{BASE}/{workflow_id}/resume"
    for body, headers in (
        ({"token_type": "gold"}, {}),
        ({"billing_mode": "free"}, {}),
        ({"app_source": "<script>"}, {}),
        ({}, {"X-Token-Type": "gold"}),
        ({}, {"X-App-Source": "a;b"}),
    ):
        refused = await client.http.post(url, json=body, headers={**client.auth(), **headers})
        assert refused.status_code == 400, (body, headers, refused.text)
        assert refused.json()["status"] == "error" and refused.json()["errorCode"] == 400
    unchanged = (await client.http.get(f"{BASE}/{workflow_id}", headers=client.auth())).json()
    assert unchanged["data"]["workflow"]["billingPreviews"] == [preview]

    resumed = await client.http.post(
        url,
        json={"token_type": "sogni", "billing_mode": "tokens"},
        headers={**client.auth(), "X-App-Source": "resume-app"},
    )
    assert resumed.status_code == 202 and resumed.json()["data"]["resumed"] is True
    later = await client.stream(workflow_id, **{"Last-Event-ID": str(frames[-1]["id"])})
    assert later[0]["event"] == "billing_preview_updated"
    assert later[-1]["data"]["status"] == "completed"
    final = (await client.http.get(f"{BASE}/{workflow_id}", headers=client.auth())).json()
    final = final["data"]["workflow"]
    assert final["scope"] == {**scope, "tokenType": "sogni", "billingMode": "tokens"} | {
        "appSource": "resume-app"
    }
    assert final["billingPreviews"][0] == preview and len(final["billingPreviews"]) == 2
    assert (
        final["billingPreview"]
        == final["billingPreviews"][1]
        == later[0]["data"]["data"]["billingPreview"]
    )
    assert (final["billingPreview"]["tokenType"], final["billingPreview"]["billingMode"]) == (
        "sogni",
        "tokens",
    )
    assert final["safeContentFilter"] is False  # the start's value is kept
    events = (await client.http.get(f"{BASE}/{workflow_id}/events", headers=client.auth())).json()[
        "data"
    ]["events"]
    assert final["events"] == events and events[-1]["type"] == "workflow_completed"


async def test_default_safe_content_filter_and_bad_start_headers(client: Client) -> None:
    workflow = (await client.start({"input": PLAN})).json()["data"]["workflow"]
    assert workflow["safeContentFilter"] is True and workflow["scope"]["tokenType"] is None
    assert workflow["billingPreview"]["tokenType"] == "spark"  # denominated by default
    for headers in ({"X-Token-Type": "gold"}, {"X-App-Source": "bad\tsource"}):
        refused = await client.start({"input": PLAN}, **headers)
        assert refused.status_code == 400 and refused.json()["status"] == "error", headers


async def test_a_video_step_streams_coarse_progress_with_an_eta(client: Client) -> None:
    """An encode of a few seconds reports increasing fractions inside the step, each with an
    ETA, persisted coarsely: a handful of events, not one per ffmpeg progress block."""
    plan = {
        "title": "One video",
        "steps": [
            {
                "id": "clip",
                "toolName": "generate_video",
                "arguments": {
                    "prompt": "waves on a pier",
                    "duration": 5,
                    "width": 1280,
                    "height": 720,
                    "generateAudio": False,
                },
            }
        ],
    }
    started = await client.start({"input": plan})
    assert started.status_code == 201, started.text
    frames = await client.stream(started.json()["data"]["workflow"]["workflowId"])
    assert frames[-1]["event"] == "workflow_completed", frames[-1]
    ticks = [
        f["data"]["data"]
        for f in frames
        if f["event"] == "workflow_progress" and "stepId" in f["data"]["data"]
    ]
    inside = [t["progress"] for t in ticks if 0 < t["progress"] < 1]
    assert len(inside) >= 3, ticks
    assert inside == sorted(inside) and len(set(inside)) == len(inside)
    assert all(t["stepId"] == "clip" and t["toolName"] == "generate_video" for t in ticks)
    assert all(t["etaSeconds"] is not None and t["etaSeconds"] >= 0 for t in ticks)
    # At most one per 5 % moved (20) plus the first and the last.
    assert len(ticks) <= 22
    # Every tick comes before the step's end.
    ended = next(i for i, f in enumerate(frames) if f["event"] == "step_completed")
    assert all(
        i < ended
        for i, f in enumerate(frames)
        if f["event"] == "workflow_progress" and "stepId" in f["data"]["data"]
    )
