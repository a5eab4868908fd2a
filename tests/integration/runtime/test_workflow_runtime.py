"""Creative workflows executed durably (DBOS on SQLite) with real tools."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from sogni_intelligence.errors import ServiceError
from sogni_intelligence.runtime import cost_approval
from sogni_intelligence.runtime.workflows import WorkflowRuntime

pytestmark = pytest.mark.slow

KEYFRAME_TO_VIDEO = {
    "title": "Keyframe to video",
    "steps": [
        {
            "id": "keyframe",
            "toolName": "generate_image",
            "arguments": {"prompt": "a lighthouse at dusk", "width": 256, "height": 256, "seed": 4},
        },
        {
            "id": "clip",
            "toolName": "animate_photo",
            "arguments": {"prompt": "slow push in", "duration": 2, "width": 256, "height": 256},
            "dependsOn": [
                {
                    "sourceStepId": "keyframe",
                    "targetArgument": "sourceImageIndex",
                    "transform": "image_index",
                    "mediaType": "image",
                    "required": True,
                }
            ],
        },
    ],
}


async def wait_terminal(runtime: WorkflowRuntime, record_id: str, timeout: float = 60) -> list:
    events = []

    async def follow() -> None:
        async for event in runtime.deps.records.follow(record_id):
            events.append(event)
            if event.type in ("workflow_completed", "workflow_failed", "workflow_cancelled"):
                return

    await asyncio.wait_for(follow(), timeout)
    return events


async def test_plan_runs_to_completion_with_bound_media(runtime: WorkflowRuntime) -> None:
    record, replayed = await runtime.start("key_a", KEYFRAME_TO_VIDEO, [])
    assert not replayed and record.status == "queued"
    events = await wait_terminal(runtime, record.id)
    types = [e.type for e in events]
    # The plan's estimate is known at the start, before the workflow runs.
    assert types[:2] == ["billing_preview_updated", "workflow_started"]
    assert types[-1] == "workflow_completed"
    assert events[0].payload["billingPreview"]["estimatedCapacityUnits"] > 0
    assert types.count("step_started") == 2 and types.count("step_completed") == 2
    assert types.count("artifact_created") == 2
    assert [e.sequence for e in events] == list(range(len(events)))
    final = await runtime.deps.records.get(record.id)
    assert final is not None and final.status == "completed"
    public = await runtime.public(final)
    kinds = [a["kind"] for a in public["artifacts"]]
    assert kinds == ["image", "video"]
    video = public["artifacts"][1]
    assert video["mimeType"] == "video/mp4" and abs(video["duration"] - 2) < 0.1
    assert video["url"].startswith("http://media.test/v1/media/") and "sig=" in video["url"]
    assert [s["status"] for s in public["steps"]] == ["completed", "completed"]


async def test_failed_required_source_fails_the_dependent_step(runtime: WorkflowRuntime) -> None:
    plan = {
        "steps": [
            {
                "id": "a",
                "toolName": "generate_image",
                "arguments": {"prompt": "x", "width": 256, "height": 256},
            },
            {
                "id": "bad",
                "toolName": "generate_image",
                "arguments": {"prompt": "y", "model": "nope-model"},
            },
            {
                "id": "c",
                "toolName": "upscale_image",
                "arguments": {},
                "dependsOn": [
                    {
                        "sourceStepId": "bad",
                        "targetArgument": "sourceImageIndex",
                        "transform": "image_index",
                    }
                ],
            },
        ]
    }
    record, _ = await runtime.start("key_a", plan, [])
    events = await wait_terminal(runtime, record.id)
    final = await runtime.deps.records.get(record.id)
    assert final is not None and final.status == "partial_failure"
    failed = [e.payload["stepId"] for e in events if e.type == "step_failed"]
    assert sorted(failed) == ["bad", "c"]
    assert len((await runtime.public(final))["artifacts"]) == 1  # step a's image is kept


async def test_invalid_plans_and_cost_ceiling_are_refused(runtime: WorkflowRuntime) -> None:
    with pytest.raises(ServiceError) as info:
        await runtime.start("key_a", {"steps": []}, [])
    assert info.value.status == 400
    with pytest.raises(ServiceError) as info:
        await runtime.start("key_a", KEYFRAME_TO_VIDEO, [], max_units=0.5)
    assert info.value.code == "cost_limit_exceeded"


async def test_idempotent_start_runs_once(runtime: WorkflowRuntime) -> None:
    first, _ = await runtime.start("key_a", KEYFRAME_TO_VIDEO, [], idempotency=("k", {"b": 1}))
    again, replayed = await runtime.start(
        "key_a", KEYFRAME_TO_VIDEO, [], idempotency=("k", {"b": 1})
    )
    assert replayed and again.id == first.id
    await wait_terminal(runtime, first.id)


def _ffmpeg_children() -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if f"PPid:\t{os.getpid()}\n" in status and b"ffmpeg" in cmdline:
            found.append(int(pid))
    return found


async def test_cancel_stops_the_running_media_job(runtime: WorkflowRuntime) -> None:
    plan = {
        "steps": [
            {
                "id": "long",
                "toolName": "generate_video",
                "arguments": {
                    "prompt": "a slow city timelapse",
                    "duration": 30,
                    "width": 1280,
                    "height": 720,
                },
            }
        ]
    }
    record, _ = await runtime.start("key_a", plan, [], confirm_cost=True)
    for _ in range(400):  # wait until ffmpeg runs
        if _ffmpeg_children():
            break
        await asyncio.sleep(0.05)
    assert _ffmpeg_children(), "the media job never started"
    started = asyncio.get_running_loop().time()
    cancelled, transitioned = await runtime.cancel(record, "changed my mind")
    assert transitioned and cancelled.status == "cancelled"
    while _ffmpeg_children() and asyncio.get_running_loop().time() - started < 5:
        await asyncio.sleep(0.05)
    assert not _ffmpeg_children()
    assert asyncio.get_running_loop().time() - started < 2
    again, transitioned_again = await runtime.cancel(cancelled, "twice")
    assert not transitioned_again and again.status == "cancelled"
    await asyncio.sleep(1)  # let a late step result try to land
    final = await runtime.deps.records.get(record.id)
    assert final is not None and final.status == "cancelled"
    events = await runtime.deps.records.events(record.id)
    assert [e.type for e in events].count("workflow_cancelled") == 1
    assert not any(e.type in ("workflow_completed", "workflow_failed") for e in events)


async def _wait_status(runtime: WorkflowRuntime, record_id: str, status: str, timeout: float = 20):
    for _ in range(int(timeout / 0.05)):
        record = await runtime.deps.records.get(record_id)
        if record is not None and record.status == status:
            return record
        await asyncio.sleep(0.05)
    raise AssertionError(f"{record_id} never reached {status}")


async def test_costly_plan_waits_for_confirmation_then_runs(runtime: WorkflowRuntime) -> None:
    runtime.approval_threshold = 0.5
    record, _ = await runtime.start("key_a", KEYFRAME_TO_VIDEO, [])
    waiting = await _wait_status(runtime, record.id, "waiting_for_user")
    assert waiting.data["waitingReason"] == "cost_approval_required"
    public = await runtime.public(waiting)
    assert (
        public["awaitingCostApproval"] and public["billingPreview"]["estimatedCapacityUnits"] > 0.5
    )
    resumed, did = await runtime.resume(waiting)
    assert did and resumed.status in ("running", "completed")
    events = await wait_terminal(runtime, record.id)
    assert [e.type for e in events].count("workflow_waiting_for_user") == 1
    assert (await runtime.deps.records.get(record.id)).status == "completed"  # type: ignore[union-attr]
    # confirming again is a no-op
    _, again = await runtime.confirm_cost(await runtime.deps.records.get(record.id))  # type: ignore[arg-type]
    assert again is False


async def test_confirm_cost_start_and_cancel_decision(runtime: WorkflowRuntime) -> None:
    runtime.approval_threshold = 0.5
    pre_approved, _ = await runtime.start("key_a", KEYFRAME_TO_VIDEO, [], confirm_cost=True)
    record, _ = await runtime.start("key_a", KEYFRAME_TO_VIDEO, [])
    waiting = await _wait_status(runtime, record.id, "waiting_for_user")
    cancelled, did = await runtime.confirm_cost(waiting, "cancel")
    assert did and cancelled.status == "cancelled"
    await wait_terminal(runtime, pre_approved.id)
    assert (await runtime.deps.records.get(pre_approved.id)).status == "completed"  # type: ignore[union-attr]


async def test_reseed_clones_with_new_seeds(runtime: WorkflowRuntime) -> None:
    record, _ = await runtime.start("key_a", KEYFRAME_TO_VIDEO, [])
    with pytest.raises(ServiceError) as info:
        await runtime.reseed("key_a", record, None)
    assert info.value.status == 409
    await wait_terminal(runtime, record.id)
    finished = await runtime.deps.records.get(record.id)
    assert finished is not None
    clone, seeds, replayed = await runtime.reseed(
        "key_a", finished, {"keyframe": 77}, ("rk", {"s": 1})
    )
    assert not replayed and clone.id != record.id
    assert {"stepId": "keyframe", "newSeed": 77} in seeds
    again, seeds_again, replayed_again = await runtime.reseed(
        "key_a", finished, {"keyframe": 77}, ("rk", {"s": 1})
    )
    assert replayed_again and again.id == clone.id and seeds_again == seeds
    await wait_terminal(runtime, clone.id)
    assert clone.data["options"]["clonedFrom"] == record.id


async def test_resume_of_a_finished_workflow_does_nothing(runtime: WorkflowRuntime) -> None:
    record, _ = await runtime.start("key_a", KEYFRAME_TO_VIDEO, [])
    await wait_terminal(runtime, record.id)
    finished = await runtime.deps.records.get(record.id)
    _, resumed = await runtime.resume(finished)  # type: ignore[arg-type]
    assert resumed is False


async def test_unanswered_cost_approval_ends_the_workflow(
    runtime: WorkflowRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cost_approval, "APPROVAL_WAIT_S", 1)
    runtime.approval_threshold = 0.5
    record, _ = await runtime.start("key_a", KEYFRAME_TO_VIDEO, [])
    events = await wait_terminal(runtime, record.id, timeout=20)
    assert events[-1].type == "workflow_cancelled"
    final = await runtime.deps.records.get(record.id)
    assert (
        final is not None and final.status == "cancelled" and not final.data["awaitingCostApproval"]
    )


async def test_an_agent_tool_runs_as_a_step_on_its_queue(runtime: WorkflowRuntime) -> None:
    """Agent tools are step tools too: a plan may end with an asset manifest."""
    plan = {
        "steps": [
            {
                "id": "look",
                "toolName": "create_asset_manifest",
                "arguments": {"media_type": "image"},
            }
        ]
    }
    record, _ = await runtime.start("key_manifest", plan, [])
    events = await wait_terminal(runtime, record.id)
    assert events[-1].type == "workflow_completed", [e.type for e in events]
    final = await runtime.deps.records.get(record.id)
    assert final is not None and final.status == "completed"
