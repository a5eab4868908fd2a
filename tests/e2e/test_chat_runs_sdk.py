"""Durable chat runs through the official `sogni-client` SDK against the real server process
(DBOS on a SQLite file and on PostgreSQL): a cost pause confirmed and streamed to the end, a
cancel during a media job, and the SDK's own refusal of inline media."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sogni_client import SogniClient
from sogni_client.errors import ChatJobError

from tests.conftest import fresh_postgres_database
from tests.e2e.conftest import RunningServer, running_server

pytestmark = pytest.mark.slow

TERMINAL = ("run_completed", "run_partial_failure", "run_failed", "run_cancelled")
PAUSED_IMAGE_RUN: dict[str, Any] = {
    "messages": [{"role": "user", "content": "Make a 256x256 picture of a red fox."}],
    "tool_choice": {"type": "function", "function": {"name": "generate_image"}},
    "sampling": {"temperature": 0, "max_tokens": 100},
    "runtime_config": {"requireJobConfirmation": True},
}
# Confirmed with these, the image job takes tens of seconds on two cores.
BIG_IMAGES = {"width": 2048, "height": 2048, "numberOfVariations": 16}
INLINE_REFUSAL = "Durable chat runs do not support inline base64/data URI media"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def chat_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """With two LLM rounds per run and the model on one thread (on shared cores llama.cpp's
    spinning threads otherwise crawl); its database a SQLite file in its data directory or a
    PostgreSQL database of its own."""
    settings = {"SOGNI_AGENT_MAX_ROUNDS": "2"}
    if request.param == "postgres":
        settings["SOGNI_DATABASE_URL"] = fresh_postgres_database("e2e_runs")
    with running_server(
        tmp_path_factory.mktemp("chat-runs-server"), settings=settings, model={"threads": 1}
    ) as running:
        yield running


@pytest.fixture
async def sogni(chat_server: RunningServer) -> AsyncIterator[SogniClient]:
    client = await SogniClient.create(
        api_key=chat_server.key, rest_endpoint=chat_server.url, disable_socket=True
    )
    yield client
    await client.aclose()


async def _events(sogni: SogniClient, run_id: str, after: int | None = None) -> list[dict]:
    """The SDK's event stream, read until the server closes it."""
    return [e async for e in sogni.chat.runs.stream_events(run_id, last_event_id=after)]


async def _paused(sogni: SogniClient) -> tuple[str, list[dict], dict]:
    run = await sogni.chat.runs.create(PAUSED_IMAGE_RUN)
    assert run["status"] == "queued" and run["events"][0]["type"] == "run_created"
    events = await _events(sogni, run["runId"])
    assert [e["sequence"] for e in events] == list(range(len(events)))
    assert events[-1]["type"] == "run_waiting_for_user", [e["type"] for e in events]
    waiting = (await sogni.chat.runs.get(run["runId"]))["waiting"]
    assert waiting == events[-1]["payload"] and waiting["reason"] == "cost_approval_required"
    return run["runId"], events, waiting["details"]


async def test_cost_pause_confirm_and_stream_to_the_end(sogni: SogniClient) -> None:
    run_id, events, details = await _paused(sogni)
    with pytest.raises(ChatJobError) as refused:  # the SDK never fills the preview in itself
        await sogni.chat.runs.confirm_cost(
            run_id, tool_call_id=details["toolCallId"], decision="confirm"
        )
    assert refused.value.status == 400
    assert str(refused.value) == 'acceptedCostPreview is required for decision="confirm"'

    confirm = {
        "tool_call_id": details["toolCallId"],
        "decision": "confirm",
        "accepted_cost_preview": details["costApprovalPreview"],
        "idempotency_key": "confirm-1",
    }
    confirmed = await sogni.chat.runs.confirm_cost(run_id, confirm)
    assert confirmed["status"] != "waiting_for_user"
    rest = await _events(sogni, run_id, after=events[-1]["sequence"])
    assert rest[0]["sequence"] == events[-1]["sequence"] + 1
    kinds = [e["type"] for e in rest]
    assert kinds[:2] == ["run_cost_confirmation_resolved", "run_resumed"], kinds
    assert kinds[-1] == "run_completed", kinds
    assert "tool_call_resolved" in kinds and "artifact_created" in kinds

    run = await sogni.chat.runs.get(run_id)
    assert run["status"] == "completed" and run["finalResponse"]["finishReason"]
    assert run["artifacts"] and run["childWorkflowIds"]
    image = httpx.get(run["artifacts"][0]["url"], timeout=30)  # signed: no key needed
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    again = await sogni.chat.runs.confirm_cost(run_id, confirm)  # a retry is a no-op
    assert again["status"] == "completed" and again["events"] == run["events"]


async def test_cancel_during_the_media_job(sogni: SogniClient) -> None:
    run_id, events, details = await _paused(sogni)
    await sogni.chat.runs.confirm_cost(
        run_id,
        tool_call_id=details["toolCallId"],
        decision="confirm",
        accepted_cost_preview=details["costApprovalPreview"],
        overrides=BIG_IMAGES,
    )
    workflow_id = None
    async for event in sogni.chat.runs.stream_events(run_id, last_event_id=events[-1]["sequence"]):
        assert event["type"] not in TERMINAL, event
        if event["type"] == "tool_call_progress":
            workflow_id = event["payload"]["workflowId"]
            break
    assert workflow_id is not None
    assert (await sogni.workflows.get(workflow_id))["status"] in ("queued", "running")
    cancelled = await sogni.chat.runs.cancel(run_id, reason="too slow")
    assert cancelled["status"] == "cancelled" and cancelled["cancellationReason"] == "too slow"
    kinds = [e["type"] for e in await _events(sogni, run_id)]  # closes at run_cancelled
    assert kinds[-1] == "run_cancelled" and kinds.count("run_cancelled") == 1, kinds
    again = await sogni.chat.runs.cancel(run_id)
    assert again["status"] == "cancelled" and again["cancellationReason"] == "too slow"
    assert (await sogni.workflows.get(workflow_id))["status"] == "cancelled"


@pytest.mark.parametrize(
    "inline",
    [
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
                    ],
                }
            ]
        },
        {"media_references": [{"kind": "image", "url": "data:image/png;base64,AA=="}]},
        {"media_context": {"images": ["data:image/png;base64,AA=="]}},
    ],
)
async def test_the_sdk_refuses_inline_media(sogni: SogniClient, inline: dict[str, Any]) -> None:
    params = {"messages": [{"role": "user", "content": "Describe it."}], **inline}
    with pytest.raises(ValueError, match=INLINE_REFUSAL):
        await sogni.chat.runs.create(params)
