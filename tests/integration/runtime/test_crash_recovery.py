"""A workflow process killed with SIGKILL mid-run is finished by the next process.

`crash_runner.py` hosts the runtime on a data directory in a child process: `start` starts a
four-step plan and runs until killed; `recover` launches DBOS (which recovers the workflow)
and waits for the terminal event. The test watches the SQLite files from outside, kills the
child's whole process group (its ffmpeg jobs too) at a chosen point, and then checks the
finished workflow: every step completed exactly once in the event log, the steps finished
before the kill made no second set of assets, and the artifacts decode.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from sogni_intelligence.media.ffmpeg import ffmpeg_exe, ffprobe_exe
from tests.integration.runtime.crash_runner import OWNER, PLAN, STEP_MARKERS
from tests.integration.runtime.processes import kill, read_json_line, spawn, stderr_tail

pytestmark = pytest.mark.slow

RUNNER = Path(__file__).with_name("crash_runner.py")
STEP_IDS = [step["id"] for step in PLAN["steps"]]
# Seconds of video each step's output should last (the clip, plus what extend_video adds).
VIDEO_SECONDS = {"clip": 10.0, "extended": 13.0, "captioned": 13.0}
IMAGE_SIZE = (1024, 1024)
WATCH_TIMEOUT_S = 40
RECOVER_TIMEOUT_S = 60

Events = list[dict[str, Any]]


# --- process and database helpers -------------------------------------------------------------


def _query(db_file: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=5)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def _events(data_dir: Path, record_id: str) -> Events:
    rows = _query(
        data_dir / "sogni.sqlite",
        "SELECT sequence, type, payload, dedupe_key FROM record_events WHERE record_id = ? "
        "ORDER BY sequence",
        record_id,
    )
    return [
        {"sequence": seq, "type": kind, "payload": json.loads(payload or "{}"), "dedupe": key}
        for seq, kind, payload, key in rows
    ]


def _has(events: Events, kind: str, step_id: str) -> bool:
    return any(e["type"] == kind and e["payload"].get("stepId") == step_id for e in events)


def _completed_steps(events: Events) -> list[str]:
    return [e["payload"]["stepId"] for e in events if e["type"] == "step_completed"]


def _assets_by_step(data_dir: Path) -> dict[str, list[tuple[str, str]]]:
    """(asset id, sha256) of every stored asset, grouped by the step whose marker it carries."""
    rows = _query(
        data_dir / "sogni.sqlite",
        "SELECT id, sha256, tool, meta FROM assets WHERE owner = ? ORDER BY created_at",
        OWNER,
    )
    grouped: dict[str, list[tuple[str, str]]] = {step: [] for step in STEP_IDS}
    for asset_id, sha256, tool, meta in rows:
        owners = [
            step
            for step, (marker_tool, marker) in STEP_MARKERS.items()
            if tool == marker_tool and marker in (meta or "")
        ]
        assert len(owners) == 1, f"asset {asset_id} ({tool}, {meta}) belongs to no single step"
        grouped[owners[0]].append((asset_id, sha256))
    return grouped


# --- the scenario -------------------------------------------------------------------------------


def _crash_and_recover(
    data_dir: Path,
    processes: list[subprocess.Popen[bytes]],
    kill_when: Callable[[Events], bool],
    *recover_args: str,
) -> tuple[str, Events, dict[str, Any]]:
    """Start the plan, SIGKILL the worker once `kill_when(events)` holds, recover it (with
    `recover_args` on the runner's command line). Returns the record id, the events at the
    kill, and the recovering runner's summary."""
    worker = spawn(RUNNER, data_dir, "start", "start", "--timeout", str(RECOVER_TIMEOUT_S))
    processes.append(worker)
    try:
        record_id = read_json_line(worker, WATCH_TIMEOUT_S)["record_id"]
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stderr_tail(data_dir, 'start')}") from None
    deadline = time.monotonic() + WATCH_TIMEOUT_S
    while True:
        assert worker.poll() is None, (
            f"the worker died on its own\n{stderr_tail(data_dir, 'start')}"
        )
        if kill_when(_events(data_dir, record_id)):
            break
        assert time.monotonic() < deadline, (
            f"the workflow never reached the kill point: {_events(data_dir, record_id)}\n"
            f"{stderr_tail(data_dir, 'start')}"
        )
        time.sleep(0.01)
    kill(worker)
    at_kill = _events(data_dir, record_id)

    recovering = spawn(
        RUNNER, data_dir, "recover", "recover", "--timeout", str(RECOVER_TIMEOUT_S), *recover_args
    )
    processes.append(recovering)
    try:
        summary = read_json_line(recovering, RECOVER_TIMEOUT_S + 15)
        assert recovering.wait(timeout=30) == 0, summary
        assert "error" not in summary, summary
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stderr_tail(data_dir, 'recover')}") from None
    return record_id, at_kill, summary


def _check_finished(
    data_dir: Path, record_id: str, at_kill: Events, summary: dict[str, Any]
) -> None:
    # The recovering process took the workflow over and wrote the rest of its events.
    [recovered] = summary["records"]
    assert recovered["record_id"] == record_id and recovered["status"] == "completed"
    assert recovered["dbos_status"] == "SUCCESS", recovered
    assert recovered["new_events"], "nothing happened after the restart"
    assert recovered["new_events"][0]["sequence"] == len(at_kill)  # sequences start at 0

    status, data = _query(
        data_dir / "sogni.sqlite",
        "SELECT status, data FROM durable_records WHERE id = ?",
        record_id,
    )[0]
    data = json.loads(data)
    assert status == "completed"
    assert [s["status"] for s in data["steps"]] == ["completed"] * len(STEP_IDS)

    # The event log: gap-free, each dedupe key once, each lifecycle event once.
    events = _events(data_dir, record_id)
    assert [e["sequence"] for e in events] == list(range(len(events)))
    assert events[: len(at_kill)] == at_kill, "events written before the crash changed"
    dedupe = Counter(e["dedupe"] for e in events)
    assert None not in dedupe and max(dedupe.values()) == 1, dedupe
    types = Counter(e["type"] for e in events)
    assert types["workflow_started"] == 1
    assert types["workflow_completed"] == 1 and events[-1]["type"] == "workflow_completed"
    assert not {"workflow_failed", "workflow_cancelled", "step_failed"} & set(types)
    for step in STEP_IDS:
        for kind in ("step_started", "step_completed"):
            assert sum(_has([e], kind, step) for e in events) == 1, (kind, step)
    waves = [e["payload"] for e in events if e["type"] == "workflow_progress"]
    assert [p["completedSteps"] for p in waves if "completedSteps" in p] == [1, 2, 3, 4]

    # Assets: a step finished before the kill never ran again; the step in flight may have run
    # twice (at-least-once), but only the outputs of its recorded run are artifacts.
    produced = {
        e["payload"]["stepId"]: e["payload"]["assetIds"]
        for e in events
        if e["type"] == "step_completed"
    }
    stored = _assets_by_step(data_dir)
    finished_before = set(_completed_steps(at_kill))
    for step in STEP_IDS:
        ids = [asset_id for asset_id, _ in stored[step]]
        assert produced[step] and set(produced[step]) <= set(ids), step
        if step in finished_before:
            assert len(ids) == len(produced[step]), f"{step} ran again after the restart: {ids}"
        else:
            assert len(ids) <= 2 * len(produced[step]), f"{step} ran more than twice: {ids}"
    artifacts = [a["id"] for a in data["artifacts"]]
    assert artifacts == [asset_id for step in STEP_IDS for asset_id in produced[step]]
    created = [e["payload"]["artifact"]["id"] for e in events if e["type"] == "artifact_created"]
    assert created == artifacts

    # Every artifact decodes.
    sha = {asset_id: digest for rows in stored.values() for asset_id, digest in rows}
    for artifact in data["artifacts"]:
        path = data_dir / "media" / "blobs" / sha[artifact["id"]][:2] / sha[artifact["id"]]
        assert path.is_file(), artifact
        if artifact["kind"] == "image":
            with Image.open(path) as image:
                image.load()
                assert image.size == IMAGE_SIZE
            continue
        assert artifact["kind"] == "video", artifact
        probe = subprocess.run(
            [
                ffprobe_exe(),
                "-v",
                "error",
                "-show_entries",
                "format=duration",
                "-of",
                "json",
                str(path),
            ],
            capture_output=True,
            check=True,
            timeout=30,
        )
        duration = float(json.loads(probe.stdout)["format"]["duration"])
        assert abs(duration - VIDEO_SECONDS[artifact["stepId"]]) < 0.25, (artifact, duration)
        decode = subprocess.run(
            [ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "null", "-"],
            capture_output=True,
            timeout=60,
        )
        assert decode.returncode == 0 and not decode.stderr.strip(), decode.stderr

    # DBOS agrees: the workflow succeeded, each plan step has one recorded output.
    dbos = data_dir / "dbos.sqlite"
    [(dbos_status,)] = _query(
        dbos, "SELECT status FROM workflow_status WHERE workflow_uuid = ?", record_id
    )
    assert dbos_status == "SUCCESS"
    # Plan steps run as queued child workflows (tool_job), each recording one _run_step.
    functions = Counter(
        name
        for (name,) in _query(
            dbos,
            "SELECT function_name FROM operation_outputs WHERE workflow_uuid = ? OR workflow_uuid"
            " IN (SELECT workflow_uuid FROM workflow_status WHERE parent_workflow_id = ?)",
            record_id,
            record_id,
        )
    )
    assert functions["_run_step"] == len(STEP_IDS)
    assert functions["_finish"] == 1


def test_killed_during_the_second_step_resumes_after_the_first(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    record_id, at_kill, summary = _crash_and_recover(tmp_path, processes, _in_second_step)
    assert _completed_steps(at_kill) == ["keyframe"], "the kill missed the second step"
    _check_finished(tmp_path, record_id, at_kill, summary)


def test_killed_during_the_first_step_still_completes(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    def in_first_step(events: Events) -> bool:
        return _has(events, "step_started", "keyframe") and not _completed_steps(events)

    record_id, at_kill, summary = _crash_and_recover(tmp_path, processes, in_first_step)
    assert not _completed_steps(at_kill), "the kill missed the first step"
    _check_finished(tmp_path, record_id, at_kill, summary)


def _in_second_step(events: Events) -> bool:
    return (
        _has(events, "step_completed", "keyframe")
        and _has(events, "step_started", "clip")
        and not _has(events, "step_completed", "clip")
    )


def test_a_failure_after_the_restart_still_ends_the_record(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """Killed in the second step, recovered by a process whose record store then fails: the
    record ends `partial_failure` (the first step's image stands) with the cause as its
    reason, the events before the kill untouched, and the first step not run again."""
    record_id, at_kill, summary = _crash_and_recover(
        tmp_path, processes, _in_second_step, "--fault", "records"
    )
    [recovered] = summary["records"]
    assert recovered["status"] == "partial_failure", recovered
    status, data = _query(
        tmp_path / "sogni.sqlite",
        "SELECT status, data FROM durable_records WHERE id = ?",
        record_id,
    )[0]
    data = json.loads(data)
    assert status == "partial_failure"
    assert "injected records fault" in data["failureReason"], data["failureReason"]
    events = _events(tmp_path, record_id)
    assert [e["sequence"] for e in events] == list(range(len(events)))
    assert events[: len(at_kill)] == at_kill
    assert events[-1]["type"] == "workflow_completed"
    assert events[-1]["payload"]["status"] == "partial_failure"
    keyframe_assets = _assets_by_step(tmp_path)["keyframe"]
    produced = next(e for e in at_kill if e["type"] == "step_completed")["payload"]["assetIds"]
    assert len(keyframe_assets) == len(produced), "the finished first step ran again"
