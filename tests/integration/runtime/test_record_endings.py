"""Whatever fails inside, a durable record ends: workflows and chat runs in process (the real
default model, DBOS and our records on SQLite and on PostgreSQL), each with one seam made to
fail (`faults.py`), end `failed` or `partial_failure` with a `failureReason` naming the cause
and their terminal event, within seconds. Media URLs that no fetch could take are a 400 before
anything is stored."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from sogni_intelligence.store.records import RecordStore
from tests.conftest import embedded_settings, in_process_app
from tests.integration.runtime.faults import Fault, inject

pytestmark = pytest.mark.slow

WORKFLOWS = "/v1/creative-agent/workflows"
RUNS = "/v1/chat/runs"
#: A bound against a record that never ends, not a timing: a chat run's first round reads
#: the hosted tools' whole prompt on one compute thread (about 17 s of the 21 s such a test
#: takes on an idle 2-core machine), and a busy machine needs more.
END_WITHIN_S = 60
TERMINAL = {"completed", "partial_failure", "failed", "cancelled"}
REFUSED_URLS = (
    "http://127.0.0.1:1/x.png",
    "http://localhost:8080/x.png",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/x.png",
    "http://10.0.0.7/x.png",
    "ftp://media.example/x.png",
    "file:///etc/passwd",
)
# Each route's own code for a URL it cannot take (a scheme the chat-run contract calls inline).
ACCEPTED_REFUSALS = (
    "media_url_blocked",
    "media_url_invalid",
    "invalid_media_reference",
    "inline_media_not_supported",
)
# Resolves nowhere (the `.invalid` name is reserved), so the fetch fails inside the run.
UNREACHABLE = "http://media.invalid/x.png"
ONE_IMAGE = {
    "steps": [
        {
            "id": "keyframe",
            "toolName": "generate_image",
            "arguments": {"prompt": "a red fox", "width": 256, "height": 256, "seed": 1},
        }
    ]
}
TWO_WAVES = {
    "steps": [
        *ONE_IMAGE["steps"],
        {
            "id": "bigger",
            "toolName": "upscale_image",
            "arguments": {},
            "dependsOn": [
                {
                    "sourceStepId": "keyframe",
                    "targetArgument": "sourceImageIndex",
                    "transform": "image_index",
                }
            ],
        },
    ]
}


@dataclass
class Api:
    http: httpx.AsyncClient
    key: str
    owner: str
    records: RecordStore

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def start_workflow(self, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post(WORKFLOWS, json=body, headers=self.auth)

    async def start_run(self, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post(RUNS, json=body, headers=self.auth)

    async def workflow_to_end(
        self, body: dict[str, Any]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        started = await self.start_workflow(body)
        assert started.status_code == 201, started.text
        workflow_id = started.json()["data"]["workflow"]["workflowId"]
        return await self.ended(f"{WORKFLOWS}/{workflow_id}", "workflow")

    async def run_to_end(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        started = await self.start_run(body)
        assert started.status_code == 202, started.text
        run_id = started.json()["data"]["run"]["runId"]
        return await self.ended(f"{RUNS}/{run_id}", "run")

    async def ended(self, path: str, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The record once it is terminal (the test fails if that takes too long), and its
        events."""
        deadline = time.monotonic() + END_WITHIN_S
        while True:
            response = await self.http.get(path, headers=self.auth)
            assert response.status_code == 200, response.text
            record = response.json()["data"][name]
            if record["status"] in TERMINAL:
                break
            assert time.monotonic() < deadline, f"still {record['status']}"
            await asyncio.sleep(0.1)
        events = await self.http.get(f"{path}/events", headers=self.auth)
        return record, events.json()["data"]["events"]


@pytest_asyncio.fixture
async def api(tmp_path: Path, runtime_database_url: str) -> AsyncIterator[Api]:
    settings = embedded_settings(tmp_path, threads=1).model_copy(
        update={
            "database_url": runtime_database_url,
            "agent_max_rounds": 2,
            "media_fetch_timeout_s": 5.0,
            "record_sweep_s": 0.5,
        }
    )
    async with in_process_app(settings, 120) as running:
        yield Api(
            running.http,
            running.key,
            running.owner,
            running.app.state.server.workflows.deps.records,
        )


def gap_free(events: list[dict[str, Any]]) -> None:
    assert [e["sequence"] for e in events] == list(range(len(events))), events


# --- refused at the door ------------------------------------------------------------------------


@pytest.mark.parametrize("url", REFUSED_URLS)
async def test_unusable_media_urls_are_refused_before_anything_is_stored(
    api: Api, url: str
) -> None:
    workflow = await api.start_workflow(
        {"input": ONE_IMAGE, "media_references": [{"kind": "image", "url": url}]}
    )
    run = await api.start_run(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "media_references": [{"kind": "image", "url": url}],
        }
    )
    completion = await api.http.post(
        "/v1/chat/completions",
        json={
            "messages": [{"role": "user", "content": "hi"}],
            "media_references": [{"kind": "image", "url": url}],
            "max_tokens": 4,
        },
        headers=api.auth,
    )
    for response in (workflow, run, completion):
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] in ACCEPTED_REFUSALS, error
        assert error["param"].lower().startswith(("media_references", "mediareferences")), error
    for kind in ("workflow", "chat_run"):
        stored, _ = await api.records.list(kind, api.owner, 0, 10)
        assert stored == [], kind


# --- failures inside ------------------------------------------------------------------------------


async def test_workflow_with_unreachable_media_ends_failed_naming_it(api: Api) -> None:
    record, events = await api.workflow_to_end(
        {"input": ONE_IMAGE, "media_references": [{"kind": "image", "url": UNREACHABLE}]}
    )
    assert record["status"] == "failed"
    assert "media reference 1" in record["failureReason"] and "resolve" in record["failureReason"]
    assert record["error"]["message"] == record["failureReason"]
    assert [s["status"] for s in record["steps"]] == ["skipped"]
    assert events[-1]["type"] == "workflow_failed" and events[-1]["status"] == "failed"
    gap_free(events)


async def test_chat_run_with_unreachable_media_ends_failed_naming_it(api: Api) -> None:
    record, events = await api.run_to_end(
        {
            "messages": [{"role": "user", "content": "Describe it."}],
            "media_references": [{"kind": "image", "url": UNREACHABLE}],
        }
    )
    assert record["status"] == "failed"
    assert "media reference 1" in record["failureReason"], record["failureReason"]
    assert events[-1]["type"] == "run_failed"
    assert events[-1]["payload"]["reason"] == record["failureReason"]
    gap_free(events)


@pytest.mark.parametrize(
    ("fault", "plan", "status"),
    [
        ("ingest", ONE_IMAGE, "failed"),
        ("tool", ONE_IMAGE, "failed"),
        ("records", ONE_IMAGE, "failed"),
        ("tool", TWO_WAVES, "failed"),
    ],
)
async def test_workflow_ends_whatever_fails(
    api: Api, monkeypatch: pytest.MonkeyPatch, fault: Fault, plan: dict[str, Any], status: str
) -> None:
    inject(monkeypatch, fault)
    body: dict[str, Any] = {"input": plan}
    if fault == "ingest":
        body["media_references"] = [{"kind": "image", "url": "https://media.example/a.png"}]
    record, events = await api.workflow_to_end(body)
    assert record["status"] == status, record
    assert f"injected {fault} fault" in record["failureReason"], record["failureReason"]
    assert events[-1]["type"] == "workflow_failed"
    gap_free(events)


async def test_workflow_with_a_finished_step_ends_partial_failure(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first wave completes; the record store then fails while the second wave's results
    are written: the kept image makes it a partial failure."""
    store_revise = RecordStore.revise
    waves = 0

    async def second_wave_fails(self: RecordStore, record_id: str, change: Any) -> Any:
        nonlocal waves
        waves += 1  # each wave's results are one revision
        if waves == 2:
            raise RuntimeError("injected records fault")
        return await store_revise(self, record_id, change)

    monkeypatch.setattr(RecordStore, "revise", second_wave_fails)
    record, events = await api.workflow_to_end({"input": TWO_WAVES})
    assert record["status"] == "partial_failure", record
    assert "injected records fault" in record["failureReason"]
    assert [s["status"] for s in record["steps"]] == ["completed", "skipped"]
    assert len(record["artifacts"]) == 1
    assert events[-1]["type"] == "workflow_completed"
    assert events[-1]["status"] == "partial_failure"
    gap_free(events)


@pytest.mark.parametrize("fault", ["ingest", "engine", "records"])
async def test_chat_run_ends_whatever_fails(
    api: Api, monkeypatch: pytest.MonkeyPatch, fault: Fault
) -> None:
    inject(monkeypatch, fault)
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": "Say hello."}],
        "tool_choice": "none",
        "sampling": {"temperature": 0, "max_tokens": 8},
    }
    if fault == "ingest":
        body["media_references"] = [{"kind": "image", "url": "https://media.example/a.png"}]
    record, events = await api.run_to_end(body)
    assert record["status"] == "failed", record
    assert f"injected {fault} fault" in record["failureReason"], record["failureReason"]
    assert events[-1]["type"] == "run_failed"
    gap_free(events)


async def test_chat_run_whose_tool_breaks_names_the_call(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tool's child workflow fails; the run still answers, as a partial failure whose
    reason names the call."""
    inject(monkeypatch, "tool")
    record, events = await api.run_to_end(
        {
            "messages": [{"role": "user", "content": "Make a 256x256 picture of a red fox."}],
            "tool_choice": {"type": "function", "function": {"name": "generate_image"}},
            "sampling": {"temperature": 0, "max_tokens": 100},
        }
    )
    assert record["status"] == "partial_failure", record
    assert "generate_image" in record["failureReason"], record["failureReason"]
    assert "injected tool fault" in record["failureReason"], record["failureReason"]
    [child] = record["childWorkflowIds"]
    workflow = (await api.http.get(f"{WORKFLOWS}/{child}", headers=api.auth)).json()
    assert workflow["data"]["workflow"]["status"] == "failed"
    assert "injected tool fault" in workflow["data"]["workflow"]["failureReason"]
    gap_free(events)


async def test_a_record_whose_ending_could_not_be_written_is_ended_by_the_sweeper(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refuses every write of the run's steps, and then the ending too: the
    durable workflow stops with an error and leaves the record open. Once writes work again,
    the periodic sweep ends it."""
    store_update = RecordStore._update
    broken = asyncio.Event()
    broken.set()

    async def flaky(self: RecordStore, record_id: str, *args: Any) -> Any:
        if broken.is_set() and args[1] != "running":  # the start goes through
            raise RuntimeError("injected records fault")
        return await store_update(self, record_id, *args)

    monkeypatch.setattr(RecordStore, "_update", flaky)
    started = await api.start_run(
        {
            "messages": [{"role": "user", "content": "Say hello."}],
            "tool_choice": "none",
            "sampling": {"temperature": 0, "max_tokens": 8},
        }
    )
    run_id = started.json()["data"]["run"]["runId"]
    # The ending step gives up after its retries (about 4 s); the record is still open.
    await asyncio.sleep(6)
    assert (await api.records.get(run_id)).status == "running"  # type: ignore[union-attr]
    broken.clear()
    record, events = await api.ended(f"{RUNS}/{run_id}", "run")
    assert record["status"] == "failed"
    assert "injected records fault" in record["failureReason"], record["failureReason"]
    assert events[-1]["type"] == "run_failed"
    gap_free(events)
