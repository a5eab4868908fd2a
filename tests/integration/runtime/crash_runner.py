"""A process that hosts the workflow runtime on a data directory, for crash-recovery tests and
the workflow benchmark. It is meant to be killed.

    python crash_runner.py DATA_DIR start     # start PLAN, print {"record_id": ...}, run forever
    python crash_runner.py DATA_DIR recover   # relaunch (DBOS recovers), wait for the terminal
                                              # event, print a JSON summary, exit 0 (2: timeout)
    python crash_runner.py DATA_DIR recover --fault records   # the same with a seam broken
                                                              # (see faults.py)

Every line on stdout is one JSON object; logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from dbos import DBOS

from sogni_intelligence.config import Settings
from sogni_intelligence.media.fetch import FetchPolicy
from sogni_intelligence.media.signing import UrlSigner
from sogni_intelligence.media.store import AssetStore
from sogni_intelligence.runtime import durable, workflow_steps
from sogni_intelligence.runtime.workflow_steps import WorkflowDeps
from sogni_intelligence.runtime.workflows import WorkflowRuntime
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.records import BEFORE_FIRST, TERMINAL, RecordStore
from sogni_intelligence.tools.base import ToolServices

OWNER = "crashtest"
TERMINAL_EVENTS = ("workflow_completed", "workflow_failed", "workflow_cancelled")


def _after(source: str, target: str, transform: str) -> list[dict[str, Any]]:
    return [
        {
            "sourceStepId": source,
            "targetArgument": target,
            "transform": transform,
            "required": True,
        }
    ]


# Four sequential steps, one tool each, each long enough (about 1-4 s on 2 cores) to be killed
# in; each has a prompt (or text) of its own so that its assets can be told apart in the
# assets table.
PLAN: dict[str, Any] = {
    "title": "Crash recovery",
    "steps": [
        {
            "id": "keyframe",
            "toolName": "generate_image",
            "arguments": {
                "prompt": "crash-step-1 a lighthouse on a cliff",
                "width": 1024,
                "height": 1024,
                "numberOfVariations": 4,
                "seed": 7,
            },
        },
        {
            "id": "clip",
            "toolName": "animate_photo",
            "arguments": {
                "prompt": "crash-step-2 slow push in",
                "duration": 10,
                "width": 640,
                "height": 360,
                "seed": 11,
            },
            "dependsOn": _after("keyframe", "sourceImageIndex", "image_index"),
        },
        {
            "id": "extended",
            "toolName": "extend_video",
            "arguments": {"prompt": "crash-step-3 pan to the sea", "duration": 3, "seed": 13},
            "dependsOn": _after("clip", "videoIndex", "video_index"),
        },
        {
            "id": "captioned",
            "toolName": "overlay_video",
            "arguments": {"overlays": [{"kind": "text", "text": "crash-step-4 caption"}]},
            "dependsOn": _after("extended", "sourceVideoIndex", "video_index"),
        },
    ],
}

# How each step's assets are recognised: (tool, the marker its metadata carries).
STEP_MARKERS: dict[str, tuple[str, str]] = {
    "keyframe": ("generate_image", "crash-step-1"),
    "clip": ("animate_photo", "crash-step-2"),
    "extended": ("extend_video", "crash-step-3"),
    "captioned": ("overlay_video", "crash-step-4"),
}


def emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def open_runtime(data_dir: Path) -> tuple[WorkflowRuntime, Database]:
    """Our records and assets on SQLite files in `data_dir`; DBOS is not launched yet."""
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = settings_for(data_dir)
    db = Database(settings.resolved_database_url)
    await db.create_all()
    assets = AssetStore(db, data_dir / "media", UrlSigner(b"k" * 32, "http://media.test", 3600))
    records = RecordStore(db, poll_interval_s=0.05)
    runtime = WorkflowRuntime(
        WorkflowDeps(records, assets, FetchPolicy.from_settings(settings), ToolServices())
    )
    runtime.launch()
    return runtime, db


def settings_for(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=f"sqlite+aiosqlite:///{data_dir / 'sogni.sqlite'}",
        models=[{"id": "m", "engine": "upstream", "base_url": "http://127.0.0.1:9/v1"}],
        default_model="m",
    )


async def start(data_dir: Path) -> None:
    runtime, _ = await open_runtime(data_dir)
    await durable.launch(settings_for(data_dir))
    record, _ = await runtime.start(OWNER, PLAN, [])
    emit({"record_id": record.id, "pid_ready": time.time()})
    await asyncio.Event().wait()  # until killed


async def _dbos_settled(workflow_id: str, timeout_s: float = 15) -> str | None:
    """DBOS's status for the workflow once it has left PENDING: the terminal event is written
    inside the last step, a moment before DBOS records the workflow's result. Shutting down
    in between would leave it PENDING (and recovered again on the next launch)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = await DBOS.get_workflow_status_async(workflow_id)
        if status is None or status.status != "PENDING" or time.monotonic() > deadline:
            return None if status is None else status.status
        await asyncio.sleep(0.02)


async def recover(data_dir: Path, timeout_s: float) -> int:
    runtime, db = await open_runtime(data_dir)
    records = runtime.deps.records
    pending, _ = await records.list("workflow", OWNER, 0, 100)
    pending = [r for r in pending if r.status not in TERMINAL]
    last_seen = {
        r.id: max((e.sequence for e in await records.events(r.id)), default=BEFORE_FIRST)
        for r in pending
    }

    # When the first tool runs again (the recovered workflow is executing) and how long that
    # call took, seen from here.
    first_tool_call: list[float] = []
    execute = workflow_steps.execute

    async def timed_execute(*args: Any, **kwargs: Any) -> Any:
        first = not first_tool_call
        if first:
            first_tool_call.append(time.perf_counter())
        try:
            return await execute(*args, **kwargs)
        finally:
            if first:
                first_tool_call.append(time.perf_counter())

    workflow_steps.execute = timed_execute  # type: ignore[assignment]

    began = time.perf_counter()
    await durable.launch(settings_for(data_dir))
    launched = time.perf_counter()
    resumed = await runtime.resume_pending()

    first_event: dict[str, float] = {}

    async def follow(record_id: str) -> list[dict[str, Any]]:
        seen = []
        async for event in records.follow(record_id, last_seen[record_id]):
            first_event.setdefault(record_id, time.perf_counter())
            seen.append({"sequence": event.sequence, "type": event.type})
            if event.type in TERMINAL_EVENTS:
                return seen
        return seen

    try:
        new_events = await asyncio.wait_for(
            asyncio.gather(*(follow(r.id) for r in pending)), timeout_s
        )
    except TimeoutError:
        emit({"error": "timeout", "pending": [r.id for r in pending]})
        return 2
    finished = time.perf_counter()
    summary = []
    for r, events in zip(pending, new_events, strict=True):
        final = await records.get(r.id)
        assert final is not None
        summary.append(
            {
                "record_id": r.id,
                "status": final.status,
                "dbos_status": await _dbos_settled(r.id),
                "events_before_restart": last_seen[r.id],
                "new_events": events,
                "first_new_event_s": first_event[r.id] - began if r.id in first_event else None,
            }
        )
    emit(
        {
            "records": summary,
            "resumed_unlaunched": resumed,
            "launch_s": launched - began,
            "first_tool_call_s": first_tool_call[0] - began if first_tool_call else None,
            "first_tool_call_duration_s": (
                first_tool_call[1] - first_tool_call[0] if len(first_tool_call) == 2 else None
            ),
            "until_terminal_s": finished - began,
        }
    )
    durable.shutdown()
    await db.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("mode", choices=("start", "recover"))
    parser.add_argument("--timeout", type=float, default=90.0, help="recover: seconds to wait")
    parser.add_argument("--fault", help="recover: make this seam fail (see faults.py)")
    args = parser.parse_args()
    if args.mode == "start":
        asyncio.run(start(args.data_dir))
        return 0
    if args.fault:
        sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # run as a script
        from tests.integration.runtime.faults import injected

        with injected(args.fault):
            return asyncio.run(recover(args.data_dir, args.timeout))
    return asyncio.run(recover(args.data_dir, args.timeout))


if __name__ == "__main__":
    sys.exit(main())
