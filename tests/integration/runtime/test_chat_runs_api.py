"""Durable chat runs in-process with the real default model, on SQLite and on PostgreSQL: the
record and its event stream, media tools as child workflows, cost pauses and confirmations,
clarifying questions, input rules, cancellation, idempotency and ownership."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from sogni_intelligence.config import Settings
from tests.conftest import embedded_settings
from tests.integration.media.conftest import make_png
from tests.integration.runtime.conftest import app_with_two_keys

pytestmark = pytest.mark.slow

BASE = "/v1/chat/runs"
TERMINAL = ("run_completed", "run_partial_failure", "run_failed", "run_cancelled")
INLINE_REFUSAL = "Durable chat runs do not support inline base64/data URI media"
STREAM_TIMEOUT_S = 240
RECORD_FIELDS = {
    "runId",
    "status",
    "schemaVersion",
    "backbone",
    "scope",
    "request",
    "messages",
    "toolCalls",
    "toolResults",
    "mediaContext",
    "assetManifest",
    "childWorkflowIds",
    "billingPreview",
    "billingPreviews",
    "artifacts",
    "finalResponse",
    "waiting",
    "events",
    "recovery",
    "failureReason",
    "cancellationReason",
    "timestamps",
}

Frame = dict[str, Any]


def forced(tool: str, text: str, max_tokens: int = 100, **extra: Any) -> dict[str, Any]:
    """A run whose first round must call `tool` (greedy sampling, so runs repeat)."""
    return {
        "messages": [{"role": "user", "content": text}],
        "tool_choice": {"type": "function", "function": {"name": tool}},
        "sampling": {"temperature": 0, "max_tokens": max_tokens},
        **extra,
    }


def plain(text: str = "Say hello.", max_tokens: int = 12, **extra: Any) -> dict[str, Any]:
    """A run of one LLM round that calls no tool."""
    return {
        "messages": [{"role": "user", "content": text}],
        "tool_choice": "none",
        "sampling": {"temperature": 0, "max_tokens": max_tokens},
        **extra,
    }


IMAGE_RUN = forced("generate_image", "Make a 256x256 picture of a red fox.")
PAUSED_IMAGE_RUN = {**IMAGE_RUN, "runtime_config": {"requireJobConfirmation": True}}
# Confirmed with these, the image call takes tens of seconds on two cores: long enough to
# cancel in.
BIG_IMAGES = {"width": 2048, "height": 2048, "numberOfVariations": 16}


def parse_sse(text: str) -> tuple[list[Frame], int]:
    """The frames of an SSE body, each checked for the run-event shape, and how many comment
    (heartbeat) blocks it had."""
    frames: list[Frame] = []
    comments = 0
    for block in text.split("\n\n"):
        lines = [line for line in block.splitlines() if line]
        if lines and all(line.startswith(":") for line in lines):
            comments += 1
            continue
        fields = dict(line.split(": ", 1) for line in lines if not line.startswith(":"))
        if not fields:
            continue
        data = json.loads(fields["data"])
        assert set(data) == {"sequence", "type", "at", "payload"}, data
        assert int(fields["id"]) == data["sequence"] and fields["event"] == data["type"], fields
        frames.append(data)
    return frames, comments


@dataclass
class Client:
    app: FastAPI
    http: httpx.AsyncClient
    key: str
    other: str

    def auth(self, other: bool = False) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.other if other else self.key}"}

    async def start(self, body: dict[str, Any], **headers: str) -> httpx.Response:
        return await self.http.post(BASE, json=body, headers={**self.auth(), **headers})

    async def started(self, body: dict[str, Any]) -> str:
        response = await self.start(body)
        assert response.status_code == 202, response.text
        return response.json()["data"]["run"]["runId"]

    async def run(self, run_id: str) -> dict[str, Any]:
        response = await self.http.get(f"{BASE}/{run_id}", headers=self.auth())
        assert response.status_code == 200, response.text
        return response.json()["data"]["run"]

    async def events(self, run_id: str, after: int | None = None) -> list[Frame]:
        query = "" if after is None else f"?after={after}"
        response = await self.http.get(f"{BASE}/{run_id}/events{query}", headers=self.auth())
        assert response.status_code == 200, response.text
        return response.json()["data"]["events"]

    async def stream(self, run_id: str, query: str = "", **headers: str) -> tuple[list[Frame], int]:
        """Read the event stream to its end; the server must close it by itself."""
        response = await asyncio.wait_for(
            self.http.get(
                f"{BASE}/{run_id}/events/stream{query}", headers={**self.auth(), **headers}
            ),
            STREAM_TIMEOUT_S,
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/event-stream")
        return parse_sse(response.text)

    async def confirm(
        self, run_id: str, body: dict[str, Any], other: bool = False, **headers: str
    ) -> httpx.Response:
        return await self.http.post(
            f"{BASE}/{run_id}/confirm-cost", json=body, headers={**self.auth(other), **headers}
        )

    async def cancel(self, run_id: str, other: bool = False) -> httpx.Response:
        return await self.http.post(
            f"{BASE}/{run_id}/cancel", json={"reason": "changed my mind"}, headers=self.auth(other)
        )

    async def wait_for_event(
        self, run_id: str, found: Callable[[Frame], bool], timeout_s: float = STREAM_TIMEOUT_S
    ) -> Frame:
        deadline = time.monotonic() + timeout_s
        while True:
            events = await self.events(run_id)
            match = next((e for e in events if found(e)), None)
            if match is not None:
                return match
            assert time.monotonic() < deadline, [e["type"] for e in events]
            await asyncio.sleep(0.1)

    async def download(self, url: str) -> httpx.Response:
        """A signed media URL, fetched from this app without credentials."""
        parts = urlsplit(url)
        return await self.http.get(f"{parts.path}?{parts.query}")


def run_settings(data_dir: Path, database_url: str) -> Settings:
    """The default model on one thread (two cores shared with other test processes make
    llama.cpp's spinning threads crawl) and two LLM rounds per run."""
    return embedded_settings(data_dir, threads=1, n_ctx=8192).model_copy(
        update={"database_url": database_url, "agent_max_rounds": 2}
    )


@pytest_asyncio.fixture
async def client(tmp_path: Path, runtime_database_url: str) -> AsyncIterator[Client]:
    settings = run_settings(tmp_path, runtime_database_url)
    async with app_with_two_keys(settings, 120) as parts:
        yield Client(*parts)


def types(events: list[Frame]) -> list[str]:
    return [e["type"] for e in events]


def gap_free(events: list[Frame]) -> None:
    assert [e["sequence"] for e in events] == list(range(len(events))), types(events)


# --- the record and its stream -----------------------------------------------------------------


#: The run machinery is the same on both databases; the storage-sensitive tests (event log,
#: replay, idempotency, ownership) run on both, the model-heavy flows on SQLite only.
SQLITE_ONLY = pytest.mark.parametrize("runtime_database_url", ["sqlite"], indirect=True)


async def test_start_stream_replay_and_event_list(client: Client) -> None:
    response = await client.start(
        plain(session_id="s-1", app_source="body-app"),
        **{"X-Token-Type": "sogni", "X-App-Source": "header-app"},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "success" and "idempotent" not in body["data"]
    run = body["data"]["run"]
    assert set(run) >= RECORD_FIELDS, RECORD_FIELDS - set(run)
    me = (await client.http.get("/v1/account/me", headers=client.auth())).json()["data"]
    assert run["scope"] == {
        "ownerWalletAddress": None,
        "apiKeyFingerprint": me["account"]["apiKeyFingerprint"],
        "tokenType": "sogni",  # the header, as the body has none
        "appSource": "body-app",  # the body wins over its header
    }
    assert client.key[-8:] not in json.dumps(run)
    assert run["assetManifest"] == {"assets": []}
    assert run["runId"].startswith("run_") and run["status"] == "queued"
    assert run["schemaVersion"] == "2026-05-14.1" and run["request"]["sessionId"] == "s-1"
    first = run["events"][0]
    assert (first["sequence"], first["type"]) == (0, "run_created")  # as the spec's records
    assert run["timestamps"]["createdAt"] and run["messages"][0]["content"] == "Say hello."

    frames, _ = await client.stream(run["runId"])
    gap_free(frames)
    kinds = types(frames)
    assert kinds[0] == "run_created" and kinds[-1] in TERMINAL
    assert [k for k in kinds if k in TERMINAL] == [kinds[-1]]
    for kind in ("run_started", "llm_round_started", "assistant_message_completed"):
        assert kind in kinds, kinds
    # `tool_choice: none` decides it: no media this turn.
    [intent] = [f["payload"] for f in frames if f["type"] == "media_turn_intent_classified"]
    assert kinds.index("media_turn_intent_classified") > kinds.index("llm_round_started")
    assert (intent["intent"], intent["asksForMedia"], intent["decidedBy"]) == (
        "text",
        False,
        "tool_choice",
    )
    assert "generate_image" in intent["mediaTools"] and intent["mediaToolCalls"] == []
    assert "asset_manifest_updated" not in kinds
    completed = next(f for f in frames if f["type"] == "assistant_message_completed")
    deltas = "".join(
        f["payload"]["delta"] for f in frames if f["type"] == "assistant_message_delta"
    )
    assert deltas == completed["payload"]["content"]

    # Cursors are exclusive: by query, by header, and on the event list.
    cut = 2
    tail = frames[cut + 1 :]
    by_query, _ = await client.stream(run["runId"], f"?after={cut}")
    by_header, _ = await client.stream(run["runId"], **{"Last-Event-ID": str(cut)})
    assert by_query == tail and by_header == tail
    assert await client.events(run["runId"], after=cut) == tail
    assert await client.events(run["runId"]) == frames
    assert await client.stream(run["runId"], f"?after={frames[-1]['sequence']}") == ([], 0)

    final = await client.run(run["runId"])
    assert final["status"] == kinds[-1].removeprefix("run_")
    assert final["events"] == frames and final["timestamps"]["completedAt"]
    assert final["finalResponse"]["content"] == completed["payload"]["content"]
    assert final["messages"][-1] == {
        "role": "assistant",
        "content": completed["payload"]["content"],
    }


@SQLITE_ONLY
async def test_forced_image_run_makes_a_child_workflow_and_artifacts(client: Client) -> None:
    run_id = await client.started(IMAGE_RUN)
    frames, _ = await client.stream(run_id)
    gap_free(frames)
    kinds = types(frames)
    assert kinds[-1] in ("run_completed", "run_partial_failure"), kinds
    for kind in (
        "tool_call_dispatched",
        "tool_call_progress",
        "tool_call_resolved",
        "artifact_created",
        "media_context_updated",
    ):
        assert kind in kinds, kinds
    assert kinds.index("tool_call_dispatched") < kinds.index("tool_call_resolved")
    [dispatched] = [f for f in frames if f["type"] == "tool_call_dispatched"]
    # The first tick names the child workflow; the rest are the job's own progress.
    progress, *ticks = [f for f in frames if f["type"] == "tool_call_progress"]
    assert all(t["payload"]["workflowId"] == progress["payload"]["workflowId"] for t in ticks)
    fractions = [t["payload"]["progress"] for t in ticks]
    assert fractions == sorted(fractions) and all(0 < f <= 1 for f in fractions)
    [resolved] = [f for f in frames if f["type"] == "tool_call_resolved"]
    call_id = dispatched["payload"]["toolCallId"]
    assert dispatched["payload"]["toolName"] == "generate_image"
    assert progress["payload"]["toolCallId"] == call_id == resolved["payload"]["toolCallId"]
    assert resolved["payload"]["status"] == "ok", resolved
    workflow_id = progress["payload"]["workflowId"]
    artifacts = resolved["payload"]["artifacts"]
    assert artifacts and {a["workflowId"] for a in artifacts} == {workflow_id}
    created = [f["payload"]["artifact"] for f in frames if f["type"] == "artifact_created"]
    assert [a["id"] for a in created] == [a["id"] for a in artifacts]
    media = [f for f in frames if f["type"] == "media_context_updated"][-1]["payload"]
    assert len(media["mediaContext"]["images"]) == len(artifacts)
    [intent] = [f["payload"] for f in frames if f["type"] == "media_turn_intent_classified"]
    assert (intent["intent"], intent["decidedBy"]) == ("media", "tool_choice")
    assert intent["mediaToolCalls"] == ["generate_image"]
    assert kinds.index("media_turn_intent_classified") < kinds.index("tool_call_dispatched")
    # The manifest follows the media context, with each result at its generated index.
    assert kinds.index("asset_manifest_updated") > kinds.index("media_context_updated")
    manifest = [f for f in frames if f["type"] == "asset_manifest_updated"][-1]["payload"]
    listed = manifest["assetManifest"]["assets"]
    assert [(m["assetId"], m["index"]) for m in listed] == [
        (a["id"], i) for i, a in enumerate(artifacts)
    ]
    assert {(m["origin"], m["mediaType"], m["toolName"]) for m in listed} == {
        ("generated", "image", "generate_image")
    }
    assert {m["workflowId"] for m in listed} == {workflow_id}

    run = await client.run(run_id)
    assert run["childWorkflowIds"] == [workflow_id]
    assert [a["id"] for a in run["artifacts"]] == [a["id"] for a in artifacts]
    assert run["toolCalls"][0]["toolCallId"] == call_id
    assert run["toolResults"][0]["status"] == "ok"
    record_manifest = run["assetManifest"]["assets"]
    assert [m["assetId"] for m in record_manifest] == [m["assetId"] for m in listed]
    fetched = await client.download(record_manifest[0]["url"])
    assert fetched.status_code == 200 and fetched.content.startswith(b"\x89PNG")
    child = await client.http.get(
        f"/v1/creative-agent/workflows/{workflow_id}", headers=client.auth()
    )
    assert child.json()["data"]["workflow"]["status"] == "completed"
    image = await client.download(run["artifacts"][0]["url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")


# --- cost confirmation ---------------------------------------------------------------------------


async def _waiting_for_cost(client: Client, body: dict[str, Any]) -> tuple[str, Frame, dict]:
    """Start a run that pauses before its paid call; its stream closes at the pause."""
    run_id = await client.started(body)
    frames, _ = await client.stream(run_id)
    gap_free(frames)
    assert frames[-1]["type"] == "run_waiting_for_user", types(frames)
    assert "run_awaiting_cost_confirmation" in types(frames)
    run = await client.run(run_id)
    assert run["status"] == "waiting_for_user"
    assert run["waiting"] == frames[-1]["payload"]
    assert run["waiting"]["reason"] == "cost_approval_required"
    [billing] = [f["payload"] for f in frames if f["type"] == "billing_preview_updated"]
    assert billing["billingPreview"] == run["waiting"]["details"]["costApprovalPreview"]
    assert run["billingPreview"] == billing["billingPreview"]
    return run_id, frames[-1], run["waiting"]["details"]


@SQLITE_ONLY
async def test_cost_pause_refusals_confirm_and_idempotent_retries(client: Client) -> None:
    run_id, waiting, details = await _waiting_for_cost(client, PAUSED_IMAGE_RUN)
    call_id, preview = details["toolCallId"], details["costApprovalPreview"]
    assert preview["perToolBreakdown"][0]["toolCallId"] == call_id
    assert details["toolName"] == "generate_image"
    assert json.loads(details["arguments"])["prompt"]  # what the user is asked to pay for

    missing = await client.confirm(run_id, {"tool_call_id": call_id, "decision": "confirm"})
    assert missing.status_code == 400
    assert missing.json()["message"] == 'acceptedCostPreview is required for decision="confirm"'
    changed = {**preview, "totalEstimatedCapacityUnits": preview["totalEstimatedCapacityUnits"] + 1}
    stale = await client.confirm(
        run_id, {"tool_call_id": call_id, "decision": "confirm", "acceptedCostPreview": changed}
    )
    assert stale.status_code == 409, stale.text
    wrong = await client.confirm(
        run_id,
        {"tool_call_id": "call_other", "decision": "confirm", "acceptedCostPreview": preview},
    )
    assert wrong.status_code == 409, wrong.text
    bad_overrides = await client.confirm(
        run_id,
        {
            "tool_call_id": call_id,
            "decision": "confirm",
            "acceptedCostPreview": preview,
            "overrides": {"width": 99999},
        },
    )
    assert bad_overrides.status_code == 400, bad_overrides.text
    assert bad_overrides.json()["error"]["param"] == "overrides"
    assert (await client.run(run_id))["status"] == "waiting_for_user"

    confirm = {"tool_call_id": call_id, "decision": "confirm", "acceptedCostPreview": preview}
    first = await client.confirm(run_id, confirm, **{"Idempotency-Key": "ok-1"})
    assert first.status_code == 200, first.text
    assert "idempotent" not in first.json()["data"]
    assert first.json()["data"]["run"]["status"] != "waiting_for_user"

    rest, _ = await client.stream(run_id, **{"Last-Event-ID": str(waiting["sequence"])})
    assert rest[0]["sequence"] == waiting["sequence"] + 1
    kinds = types(rest)
    assert kinds[:2] == ["run_cost_confirmation_resolved", "run_resumed"], kinds
    assert rest[0]["payload"] == {"toolCallId": call_id, "decision": "confirm"}
    assert kinds[-1] in ("run_completed", "run_partial_failure"), kinds
    [resolved] = [f for f in rest if f["type"] == "tool_call_resolved"]
    assert resolved["payload"]["toolCallId"] == call_id and resolved["payload"]["status"] == "ok"
    gap_free(await client.events(run_id))

    retry = await client.confirm(run_id, confirm, **{"Idempotency-Key": "ok-1"})
    assert retry.status_code == 200 and retry.json()["data"]["idempotent"] is True
    assert retry.json()["data"]["run"]["status"] == kinds[-1].removeprefix("run_")
    reused = await client.confirm(
        run_id, {**confirm, "decision": "cancel"}, **{"Idempotency-Key": "ok-1"}
    )
    assert reused.status_code == 409, reused.text
    late = await client.confirm(run_id, confirm)  # without a key: the run no longer waits
    assert late.status_code == 409
    run = await client.run(run_id)
    assert run["waiting"] is None and run["billingPreviews"] == [preview]
    assert types(run["events"]).count("run_cost_confirmation_resolved") == 1


@SQLITE_ONLY
async def test_declined_cost_cancels_that_call_and_the_run_goes_on(client: Client) -> None:
    run_id, waiting, details = await _waiting_for_cost(client, PAUSED_IMAGE_RUN)
    declined = await client.confirm(
        run_id, {"tool_call_id": details["toolCallId"], "decision": "cancel"}
    )
    assert declined.status_code == 200, declined.text
    rest, _ = await client.stream(run_id, f"?after={waiting['sequence']}")
    kinds = types(rest)
    assert kinds[-1] in ("run_completed", "run_partial_failure"), kinds
    assert rest[0]["payload"]["decision"] == "cancel"
    [resolved] = [f for f in rest if f["type"] == "tool_call_resolved"]
    assert resolved["payload"]["toolCallId"] == details["toolCallId"]
    assert resolved["payload"]["status"] == "cancelled" and not resolved["payload"]["artifacts"]
    run = await client.run(run_id)
    assert run["childWorkflowIds"] == [] and run["artifacts"] == []
    assert run["toolResults"][0]["status"] == "cancelled"


@SQLITE_ONLY
async def test_clarifying_question_ends_the_run_waiting_for_the_user(client: Client) -> None:
    run_id = await client.started(
        forced("ask_clarifying_question", "Make me something nice.", max_tokens=200)
    )
    frames, _ = await client.stream(run_id)
    gap_free(frames)
    assert frames[-1]["type"] == "run_waiting_for_user", types(frames)
    assert frames[-1]["payload"]["reason"] == "ask_clarifying_question"
    assert not set(types(frames)) & set(TERMINAL)
    run = await client.run(run_id)
    assert run["status"] == "waiting_for_user"
    assert run["waiting"]["reason"] == "ask_clarifying_question"
    assert run["finalResponse"]["finishReason"] == "waiting_for_user"
    # Nothing comes until the user answers in a new run: a reconnect closes at once.
    assert await client.stream(run_id, f"?after={frames[-1]['sequence']}") == ([], 0)


# --- input rules ---------------------------------------------------------------------------------


@SQLITE_ONLY
async def test_bad_billing_fields_are_400_and_start_nothing(client: Client) -> None:
    for body, headers in (
        (plain(token_type="gold"), {}),
        (plain(billing_mode="free"), {}),
        (plain(app_source="<script>"), {}),
        (plain(), {"X-Token-Type": "gold"}),
        (plain(), {"X-App-Source": "a;b"}),
    ):
        refused = await client.start(body, **headers)
        assert refused.status_code == 400, (body, headers, refused.text)
        assert refused.json()["status"] == "error" and refused.json()["errorCode"] == 400
    listed = await client.http.get(BASE, headers=client.auth())
    assert listed.json()["data"]["runs"] == []


@SQLITE_ONLY
async def test_inline_media_is_refused_and_own_media_urls_are_fetched(client: Client) -> None:
    data_uri = "data:image/png;base64,iVBORw0KGgo="
    text = {"type": "text", "text": "Describe it."}
    bodies = {
        "messages[0].content[1].image_url.url": {
            "messages": [
                {
                    "role": "user",
                    "content": [text, {"type": "image_url", "image_url": {"url": data_uri}}],
                }
            ]
        },
        "mediaReferences[0].url": plain(media_references=[{"kind": "image", "url": data_uri}]),
        "mediaContext.images[0]": plain(media_context={"images": [data_uri]}),
    }
    for field, body in bodies.items():
        refused = await client.start(body)
        assert refused.status_code == 400, refused.text
        message = refused.json()["message"]
        assert message.startswith(INLINE_REFUSAL) and field in message, message

    png = make_png((32, 24), "navy")
    uploaded = await client.http.post(
        "/v1/media", content=png, headers={**client.auth(), "Content-Type": "image/png"}
    )
    assert uploaded.status_code == 201, uploaded.text
    asset = uploaded.json()["data"]["asset"]
    assert asset["url"].startswith("http")
    # The same picture three ways; the model is told which upload index is which.
    body = plain(
        media_context={"uploadedImages": [asset["url"]]},
        media_references=[{"kind": "image", "url": asset["url"]}],
    )
    body["messages"][0]["content"] = [
        {"type": "text", "text": "Describe the picture."},
        {"type": "image_url", "image_url": {"url": asset["url"]}},
    ]
    run_id = await client.started(body)
    frames, _ = await client.stream(run_id)
    assert frames[-1]["type"] == "run_completed", types(frames)
    [media] = [f["payload"]["mediaContext"] for f in frames if f["type"] == "media_context_updated"]
    assert len(media["uploadedImages"]) == 3 and media["images"] == []
    run = await client.run(run_id)
    assert len(run["mediaContext"]["uploadedImages"]) == 3
    fetched = await client.download(run["mediaContext"]["uploadedImages"][0])
    assert fetched.status_code == 200 and fetched.content == png
    record = await client.app.state.server.chat_runs.deps.records.get(run_id)
    system, user = record.data["state"]["messages"][:2]
    assert system["role"] == "system" and system["content"].endswith(
        "by the index tools take: image -1 = media_context.uploadedImages[0]; "
        "image -2 = media reference 1; image -3 = attached image 1."
    )
    assert user["content"] == "Describe the picture.\n[attached image 1]"


# --- cancellation --------------------------------------------------------------------------------


@SQLITE_ONLY
async def test_cancel_stops_the_run_and_its_child_workflow(client: Client) -> None:
    run_id, _, details = await _waiting_for_cost(client, PAUSED_IMAGE_RUN)
    confirmed = await client.confirm(
        run_id,
        {
            "tool_call_id": details["toolCallId"],
            "decision": "confirm",
            "acceptedCostPreview": details["costApprovalPreview"],
            "overrides": BIG_IMAGES,
        },
    )
    assert confirmed.status_code == 200, confirmed.text
    progress = await client.wait_for_event(
        run_id, lambda e: e["type"] == "tool_call_progress", timeout_s=60
    )
    workflow_id = progress["payload"]["workflowId"]
    assert (await client.run(run_id))["childWorkflowIds"] == [workflow_id]  # while it runs
    dispatched = next(e for e in await client.events(run_id) if e["type"] == "tool_call_dispatched")
    arguments = json.loads(dispatched["payload"]["arguments"])
    assert {name: arguments[name] for name in BIG_IMAGES} == BIG_IMAGES
    workflow_url = f"/v1/creative-agent/workflows/{workflow_id}"
    child = (await client.http.get(workflow_url, headers=client.auth())).json()["data"]
    assert child["workflow"]["status"] in ("queued", "running")

    began = time.monotonic()
    cancelled = await client.cancel(run_id)
    assert cancelled.status_code == 200, cancelled.text
    run = cancelled.json()["data"]["run"]
    assert run["status"] == "cancelled" and run["cancellationReason"] == "changed my mind"
    assert (await client.run(run_id))["status"] == "cancelled"
    assert time.monotonic() - began < 2

    deadline = time.monotonic() + 20
    while True:
        child = (await client.http.get(workflow_url, headers=client.auth())).json()["data"]
        if child["workflow"]["status"] == "cancelled":
            break
        assert time.monotonic() < deadline, child["workflow"]["status"]
        await asyncio.sleep(0.1)

    again = await client.cancel(run_id)
    assert again.status_code == 200
    unchanged = again.json()["data"]["run"]
    assert unchanged["status"] == "cancelled" and unchanged["timestamps"] == run["timestamps"]
    assert unchanged["events"] == (await client.run(run_id))["events"]
    await asyncio.sleep(3)  # whatever the interrupted batch still does must not reopen the run
    final = await client.run(run_id)
    assert final["status"] == "cancelled"
    assert final["timestamps"] == run["timestamps"] and final["toolResults"] == []
    kinds = types(final["events"])
    assert Counter(k for k in kinds if k in TERMINAL) == {"run_cancelled": 1}, kinds
    assert kinds[-1] == "run_cancelled" and "tool_call_resolved" not in kinds, kinds
    gap_free(final["events"])
    frames, _ = await client.stream(run_id)
    assert frames[-1]["type"] == "run_cancelled"


@SQLITE_ONLY
async def test_forced_video_call_pauses_for_its_cost(client: Client) -> None:
    """A forced generate_video (a tool whose schema has `$defs`) is a paid call: with
    confirmation on, the run pauses on it."""
    run_id = await client.started(
        forced(
            "generate_video",
            "Make a short video of waves on a beach.",
            runtime_config={"requireJobConfirmation": True},
        )
    )
    frames, _ = await client.stream(run_id)
    assert frames[-1]["type"] == "run_waiting_for_user", types(frames)
    assert (
        frames[-1]["payload"]["details"]["costApprovalPreview"]["perToolBreakdown"][0]["toolName"]
        == "generate_video"
    )


# --- idempotency and ownership -------------------------------------------------------------------


async def test_idempotent_starts_and_ownership(client: Client) -> None:
    body = plain(max_tokens=4)
    first = await client.start(body, **{"Idempotency-Key": "k-1"})
    again = await client.start(body, **{"Idempotency-Key": "k-1"})
    assert first.status_code == 202 and again.status_code == 200, again.text
    run_id = first.json()["data"]["run"]["runId"]
    assert again.json()["data"]["idempotent"] is True
    assert again.json()["data"]["run"]["runId"] == run_id
    assert first.json()["data"]["run"]["request"]["idempotencyKey"] == "k-1"
    changed = await client.start(plain("Say goodbye.", max_tokens=4), **{"Idempotency-Key": "k-1"})
    assert changed.status_code == 409, changed.text

    raced = await asyncio.gather(
        *(client.start(body, **{"Idempotency-Key": "race"}) for _ in range(8))
    )
    assert sorted(r.status_code for r in raced) == [200] * 7 + [202], [r.text for r in raced]
    [raced_id] = {r.json()["data"]["run"]["runId"] for r in raced}
    assert raced_id != run_id

    for path in ("", "/events", "/events/stream"):
        response = await client.http.get(f"{BASE}/{run_id}{path}", headers=client.auth(True))
        assert response.status_code == 404, (path, response.text)
    assert (await client.cancel(run_id, other=True)).status_code == 404
    confirm = {"tool_call_id": "call_x", "decision": "cancel"}
    assert (await client.confirm(run_id, confirm, other=True)).status_code == 404
    missing = await client.http.get(f"{BASE}/run_000000000000000000000000", headers=client.auth())
    assert missing.status_code == 404

    for finished in (run_id, raced_id):  # the runs end on their own, untouched by the others
        frames, _ = await client.stream(finished)
        assert frames[-1]["type"] == "run_completed", types(frames)
