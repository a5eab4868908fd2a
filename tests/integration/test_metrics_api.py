"""`/metrics` and request logs through the whole app in process: who may scrape, and that the
HTTP, record and SSE families move with real requests.

The model is an upstream nobody serves (no model loads), and every workflow waits for its cost
to be confirmed, so a started workflow stays open for as long as a test needs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from sogni_intelligence.config import ModelConfig, Settings
from sogni_intelligence.store.events import Announcement
from sogni_intelligence.store.keys import KeyStore
from sogni_intelligence.store.records import RecordStore
from tests.conftest import in_process_app

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
WORKFLOWS = "/v1/creative-agent/workflows"
ONE_IMAGE = {
    "title": "One image",
    "steps": [{"id": "a", "toolName": "generate_image", "arguments": {"prompt": "a red cube"}}],
}


class Api:
    def __init__(
        self, app: FastAPI, http: httpx.AsyncClient, user: str, owner: str, admin: str
    ) -> None:
        self.app = app
        self.http = http
        self.owner = owner
        self.user = {"Authorization": f"Bearer {user}"}
        self.admin = {"Authorization": f"Bearer {admin}"}

    async def scrape(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every sample of the exposition, by name and labels."""
        response = await self.http.get("/metrics", headers=self.admin)
        assert response.status_code == 200, response.text
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }

    async def start_workflow(self) -> str:
        started = await self.http.post(WORKFLOWS, json={"input": ONE_IMAGE}, headers=self.user)
        assert started.status_code == 201, started.text
        return started.json()["data"]["workflow"]["workflowId"]


def sample(scraped: dict, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    data: Path = tmp_path_factory.mktemp("metrics")
    settings = Settings(
        data_dir=data,
        models=[ModelConfig(id="up", engine="upstream", base_url="http://127.0.0.1:9/v1")],
        default_model="up",
        key_cache_seconds=0,
        workflow_cost_confirmation_units=0,
    )
    async with in_process_app(settings) as running:
        keys: KeyStore = running.app.state.server.keys
        admin, _ = await keys.create("scraper", "admin")
        yield Api(running.app, running.http, running.key, running.owner, admin)


async def test_metrics_need_an_admin_key(api: Api) -> None:
    missing = await api.http.get("/metrics")
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    user = await api.http.get("/metrics", headers=api.user)
    assert user.status_code == 403 and user.json()["error"]["code"] == "admin_key_required"
    admin = await api.http.get("/metrics", headers=api.admin)
    assert admin.status_code == 200
    assert admin.headers["content-type"].startswith("text/plain; version=")
    assert "# TYPE sogni_llm_time_to_first_token_seconds histogram" in admin.text


async def test_http_requests_are_counted_by_route_template(api: Api) -> None:
    before = await api.scrape()
    workflow_id = await api.start_workflow()
    for _ in range(2):
        got = await api.http.get(f"{WORKFLOWS}/{workflow_id}", headers=api.user)
        assert got.status_code == 200
    after = await api.scrape()
    route = {"route": f"{WORKFLOWS}/{{workflow_id}}", "method": "GET", "status": "200"}
    for name in ("sogni_http_requests_total", "sogni_http_request_duration_seconds_count"):
        assert sample(after, name, **route) - sample(before, name, **route) == 2
    refused = {"route": "/metrics", "method": "GET", "status": "403"}
    assert sample(after, "sogni_http_requests_total", **refused) >= 1
    assert not any(workflow_id in str(labels) for _, labels in after)


async def test_records_are_counted_by_kind_and_status(api: Api) -> None:
    waiting = {"kind": "workflow", "status": "waiting_for_user"}
    cancelled = {"kind": "workflow", "status": "cancelled"}
    before = await api.scrape()
    workflow_id = await api.start_workflow()
    await _until_waiting(api, workflow_id)
    middle = await api.scrape()
    assert (
        sample(middle, "sogni_records", **waiting) == sample(before, "sogni_records", **waiting) + 1
    )
    cancel = await api.http.post(f"{WORKFLOWS}/{workflow_id}/cancel", headers=api.user, json={})
    assert cancel.status_code == 200, cancel.text
    after = await api.scrape()
    assert sample(after, "sogni_records", **waiting) == sample(before, "sogni_records", **waiting)
    assert (
        sample(after, "sogni_records", **cancelled)
        == sample(before, "sogni_records", **cancelled) + 1
    )
    for queue in ("image", "video", "audio", "analysis", "orchestration"):
        assert ("sogni_queue_depth", frozenset({("queue", queue)})) in after


async def _until_waiting(api: Api, workflow_id: str) -> None:
    for _ in range(200):
        got = await api.http.get(f"{WORKFLOWS}/{workflow_id}", headers=api.user)
        if got.json()["data"]["workflow"]["status"] == "waiting_for_user":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the workflow never waited for its cost confirmation")


async def test_record_status_changes_are_logged_after_their_commit(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, "sogni_intelligence.store.records"):
        workflow_id = await api.start_workflow()
        await _until_waiting(api, workflow_id)
        cancel = await api.http.post(
            f"{WORKFLOWS}/{workflow_id}/cancel", headers=api.user, json={"reason": "enough"}
        )
        assert cancel.status_code == 200
    lines = [r.__dict__ for r in caplog.records if getattr(r, "record_id", None) == workflow_id]
    assert [line["status"] for line in lines] == [
        "queued",
        "running",
        "waiting_for_user",
        "cancelled",
    ]
    assert all(line["kind"] == "workflow" for line in lines)
    assert lines[2]["reason"] == "cost_approval_required" and lines[3]["reason"] == "enough"


class _Stream:
    """An SSE request driven by hand, so the test can act while the stream is open (the ASGI
    transport of httpx hands a response over only once the app has finished)."""

    def __init__(self, app: FastAPI, path: str, headers: dict[str, str]) -> None:
        self.messages: list[dict[str, Any]] = []
        self.first_frame = asyncio.Event()
        self.disconnected = asyncio.Event()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("test", 80),
        }
        self.task = asyncio.create_task(app(scope, self._receive, self._send))

    async def _receive(self) -> dict[str, Any]:
        await self.disconnected.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            self.first_frame.set()

    async def close(self) -> None:
        self.disconnected.set()
        await asyncio.wait_for(self.task, 10)


async def test_sse_subscribers_are_counted_while_connected(api: Api) -> None:
    # A running workflow record with no durable work behind it: its stream stays open (a
    # started workflow's stream would close when it stops to wait for the cost confirmation).
    records: RecordStore = api.app.state.server.records
    record, _ = await records.create(
        "workflow",
        api.owner,
        {"plan": ONE_IMAGE, "steps": []},
        status="running",
        first_event=Announcement("workflow_started", {"status": "running"}),
    )
    workflow_id = record.id
    before = sample(await api.scrape(), "sogni_sse_subscribers")
    path = f"{WORKFLOWS}/{workflow_id}/events/stream"
    stream = _Stream(api.app, path, {**api.user, "X-Request-Id": "sse-1"})
    try:
        await asyncio.wait_for(stream.first_frame.wait(), 10)
        assert sample(await api.scrape(), "sogni_sse_subscribers") == before + 1
    finally:
        await stream.close()
    assert sample(await api.scrape(), "sogni_sse_subscribers") == before
    start = stream.messages[0]
    assert start["type"] == "http.response.start" and start["status"] == 200
    assert (b"x-request-id", b"sse-1") in start["headers"]


async def test_the_request_id_is_echoed_on_answers_and_errors(api: Api) -> None:
    ok = await api.http.get("/v1/account/me", headers={**api.user, "X-Request-Id": "r-ok"})
    assert ok.status_code == 200 and ok.headers["x-request-id"] == "r-ok"
    refused = await api.http.get("/v1/account/me", headers={"X-Request-Id": "r-401"})
    assert refused.status_code == 401 and refused.headers["x-request-id"] == "r-401"
    unknown = await api.http.get("/v1/no-such-route", headers={**api.user, "X-Request-Id": "r-404"})
    assert unknown.status_code == 404 and unknown.headers["x-request-id"] == "r-404"
    invalid = await api.http.get("/health", headers={"X-Request-Id": "bad\x7fid"})
    made = invalid.headers["x-request-id"]
    assert made != "bad\x7fid" and len(made) == 32


async def test_each_request_is_logged_once_with_its_key(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, "sogni_intelligence.http"):
        response = await api.http.get(
            "/v1/account/me", headers={**api.user, "X-Request-Id": "log-1"}
        )
    key_id = response.json()["data"]["account"]["id"]
    lines = [r.__dict__ for r in caplog.records if getattr(r, "request_id", None) == "log-1"]
    request_lines = [line for line in lines if line["name"] == "sogni_intelligence.http"]
    assert len(request_lines) == 1
    line = request_lines[0]
    assert line["key_id"] == key_id and line["route"] == "/v1/account/me"
    assert line["method"] == "GET" and line["status"] == 200 and line["duration_ms"] >= 0
