"""A chat-run process killed with SIGKILL mid-run is finished by the next process.

`chat_run_runner.py` serves the app in a child process: `start` starts a two-round run (a
forced generate_image, then an answer) and runs until killed; `recover` builds the app the
same way, so DBOS recovers the run as it launches, and waits for the terminal event. The test
watches the database from outside, kills the child's process group at a chosen point, and
checks the finished run: gap-free events, the events before the kill untouched, each round and
tool call logged once, no finished round run again, one child workflow per tool call.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from tests.integration.runtime.chat_run_runner import BIG_IMAGES
from tests.integration.runtime.processes import kill, read_json_line, spawn, stderr_tail

pytestmark = pytest.mark.slow

RUNNER = Path(__file__).with_name("chat_run_runner.py")
WATCH_TIMEOUT_S = 90
RECOVER_TIMEOUT_S = 150
TERMINAL = ("run_completed", "run_partial_failure", "run_failed", "run_cancelled")

Events = list[dict[str, Any]]


# --- process and database helpers -------------------------------------------------------------


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


@pytest.fixture
def database(runtime_database_url: str) -> Iterator[Engine]:
    """A synchronous view of the runners' database, for watching and checking."""
    url = make_url(runtime_database_url)
    driver = "sqlite" if url.get_backend_name() == "sqlite" else "postgresql+psycopg"
    engine = create_engine(url.set(drivername=driver))
    yield engine
    engine.dispose()


def _events(database: Engine, run_id: str) -> Events:
    with database.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT sequence, type, payload, dedupe_key FROM record_events "
                "WHERE record_id = :id ORDER BY sequence"
            ),
            {"id": run_id},
        ).all()
    return [
        {"sequence": seq, "type": kind, "payload": _json(payload) or {}, "dedupe": key}
        for seq, kind, payload, key in rows
    ]


def _child_workflows(database: Engine) -> list[dict[str, Any]]:
    with database.connect() as conn:
        rows = conn.execute(
            text("SELECT id, status, data FROM durable_records WHERE kind = 'workflow'")
        ).all()
    return [
        {"id": wid, "status": status, "toolCallId": _json(data)["options"].get("toolCallId")}
        for wid, status, data in rows
    ]


def _dbos_steps(data_dir: Path, database: Engine, run_id: str) -> list[str]:
    """The steps of the run whose results DBOS has recorded (in its own SQLite file, or in
    the `dbos` schema of the PostgreSQL database)."""
    sql = "SELECT function_name FROM {}operation_outputs WHERE workflow_uuid = :id"
    if database.dialect.name == "sqlite":
        dbos = create_engine(f"sqlite:///{data_dir / 'dbos.sqlite'}")
        try:
            with dbos.connect() as conn:
                return list(conn.execute(text(sql.format("")), {"id": run_id}).scalars())
        finally:
            dbos.dispose()
    with database.connect() as conn:
        return list(conn.execute(text(sql.format("dbos.")), {"id": run_id}).scalars())


def _forget_step(data_dir: Path, database: Engine, run_id: str, step: str) -> None:
    """Drop DBOS's record of a finished step, as if the process had died after the step's
    effects and before DBOS wrote its result down: the next process runs it again."""
    sql = "DELETE FROM {}operation_outputs WHERE workflow_uuid = :id AND function_name = :step"
    params = {"id": run_id, "step": step}
    if database.dialect.name == "sqlite":
        dbos = create_engine(f"sqlite:///{data_dir / 'dbos.sqlite'}")
        try:
            with dbos.begin() as conn:
                conn.execute(text(sql.format("")), params)
        finally:
            dbos.dispose()
    else:
        with database.begin() as conn:
            conn.execute(text(sql.format("dbos.")), params)
    assert step not in _dbos_steps(data_dir, database, run_id)


def _of(events: Events, kind: str) -> Events:
    return [e for e in events if e["type"] == kind]


# --- the scenario -------------------------------------------------------------------------------


def _crash_and_recover(
    data_dir: Path,
    runtime_database_url: str,
    database: Engine,
    processes: list[subprocess.Popen[bytes]],
    scenario: str,
    kill_when: Callable[[str, Events], bool],
    after_kill: Callable[[str], None] | None = None,
    *recover_args: str,
) -> tuple[str, Events, dict[str, Any]]:
    """Start the scenario's run, SIGKILL its process once `kill_when(run_id, events)` holds,
    call `after_kill(run_id)`, recover. Returns the run id, the events at the kill, and the
    recovering runner's summary."""
    worker = spawn(RUNNER, data_dir, "start", runtime_database_url, "start", scenario)
    processes.append(worker)
    try:
        started = read_json_line(worker, WATCH_TIMEOUT_S)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stderr_tail(data_dir, 'start')}") from None
    run_id = started["run_id"]
    deadline = time.monotonic() + WATCH_TIMEOUT_S
    while True:
        assert worker.poll() is None, (
            f"the worker died on its own\n{stderr_tail(data_dir, 'start')}"
        )
        if kill_when(run_id, _events(database, run_id)):
            break
        assert time.monotonic() < deadline, (
            f"the run never reached the kill point: {_events(database, run_id)}\n"
            f"{stderr_tail(data_dir, 'start')}"
        )
        time.sleep(0.01)
    kill(worker)
    at_kill = _events(database, run_id)
    if after_kill is not None:
        after_kill(run_id)

    args = ["recover", "--key", started["key"], "--run-id", run_id]
    args += ["--timeout", str(RECOVER_TIMEOUT_S)]
    if scenario == "cost":
        args.append("--confirm")
    args += recover_args
    recovering = spawn(RUNNER, data_dir, "recover", runtime_database_url, *args)
    processes.append(recovering)
    try:
        summary = read_json_line(recovering, RECOVER_TIMEOUT_S + 60)
        assert recovering.wait(timeout=30) == 0, summary
        assert "error" not in summary, summary
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stderr_tail(data_dir, 'recover')}") from None
    return run_id, at_kill, summary


def _check_finished(
    database: Engine, run_id: str, at_kill: Events, summary: dict[str, Any]
) -> tuple[Events, str]:
    """What holds for every scenario; returns the events and the run's one tool call id."""
    assert summary["status"] in ("completed", "partial_failure"), summary
    assert summary["dbos_status"] == "SUCCESS", summary

    events = _events(database, run_id)
    kinds = [e["type"] for e in events]
    assert [e["sequence"] for e in events] == list(range(len(events))), kinds
    assert events[: len(at_kill)] == at_kill, "events written before the crash changed"
    assert len(events) > len(at_kill), "nothing happened after the restart"
    assert [k for k in kinds if k in TERMINAL] == [kinds[-1]], kinds
    assert kinds[-1] == f"run_{summary['status']}"
    dedupe = Counter(e["dedupe"] for e in events)
    assert None not in dedupe and max(dedupe.values()) == 1, dedupe

    # Each of the two rounds started and completed once.
    for kind in ("llm_round_started", "assistant_message_completed"):
        assert sorted(e["payload"]["round"] for e in _of(events, kind)) == [0, 1], kinds
    # One tool call, dispatched and resolved once, with one child workflow, the run's only one.
    calls = {
        kind: [e["payload"]["toolCallId"] for e in _of(events, kind)]
        for kind in ("tool_call_dispatched", "tool_call_progress", "tool_call_resolved")
    }
    [call_id] = calls["tool_call_dispatched"]
    assert calls["tool_call_resolved"] == [call_id], calls
    assert set(calls["tool_call_progress"]) == {call_id}, calls
    [resolved] = _of(events, "tool_call_resolved")
    assert resolved["payload"]["status"] == "ok", resolved
    progress = _of(events, "tool_call_progress")[0]
    workflow_id = progress["payload"]["workflowId"]
    assert summary["childWorkflowIds"] == [workflow_id]
    children = [w for w in _child_workflows(database) if w["toolCallId"] == call_id]
    assert [(w["id"], w["status"]) for w in children] == [(workflow_id, "completed")]
    assert {a["workflowId"] for a in resolved["payload"]["artifacts"]} == {workflow_id}
    return events, call_id


def _batches(summary: dict[str, Any]) -> list[list[str]]:
    """The tool batches the recovering process ran (a round without calls runs an empty one)."""
    return [batch for batch in summary["batches"] if batch]


def _restart_resumed(events: Events, at_kill: Events, summary: dict[str, Any]) -> None:
    """The restart said so on the run, once, after the events of the killed process."""
    resumed = [e for e in _of(events, "run_resumed") if e["payload"]["reason"] == "server_restart"]
    assert [e["payload"]["resumeCount"] for e in resumed] == [1], resumed
    assert resumed[0]["sequence"] == len(at_kill)  # the next one: sequences start at 0
    assert summary["recovery"]["resumeCount"] == 1


#: Every scenario runs on SQLite; the media-call one on PostgreSQL too (each kill and restart
#: takes tens of seconds, and the recovery code does not depend on the database).
SQLITE_ONLY = pytest.mark.parametrize("runtime_database_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
def test_killed_during_the_first_llm_round(
    tmp_path: Path,
    runtime_database_url: str,
    database: Engine,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    """Killed while the model writes the first round's call: that round runs again."""

    def in_first_round(_: str, events: Events) -> bool:
        kinds = [e["type"] for e in events]
        return "llm_round_started" in kinds and "assistant_message_completed" not in kinds

    run_id, at_kill, summary = _crash_and_recover(
        tmp_path, runtime_database_url, database, processes, "llm", in_first_round
    )
    assert summary["status_at_launch"] == "running"
    events, call_id = _check_finished(database, run_id, at_kill, summary)
    _restart_resumed(events, at_kill, summary)
    # The interrupted round ran again, then the rest once.
    assert summary["rounds"] == [0, 1] and _batches(summary) == [[call_id]]


def test_a_failure_after_the_restart_still_ends_the_run(
    tmp_path: Path,
    runtime_database_url: str,
    database: Engine,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    """Killed in the first LLM round, recovered by a process whose engine then breaks: the
    run ends `failed` with the cause as its reason and `run_failed` last, the events before
    the kill untouched (on SQLite and on PostgreSQL)."""

    def in_first_round(_: str, events: Events) -> bool:
        kinds = [e["type"] for e in events]
        return "llm_round_started" in kinds and "assistant_message_completed" not in kinds

    run_id, at_kill, summary = _crash_and_recover(
        tmp_path,
        runtime_database_url,
        database,
        processes,
        "llm",
        in_first_round,
        None,
        "--fault",
        "engine",
    )
    assert summary["status"] == "failed", summary
    events = _events(database, run_id)
    kinds = [e["type"] for e in events]
    assert [e["sequence"] for e in events] == list(range(len(events))), kinds
    assert events[: len(at_kill)] == at_kill
    assert [k for k in kinds if k in TERMINAL] == ["run_failed"] == kinds[-1:], kinds
    assert "injected engine fault" in events[-1]["payload"]["reason"]
    with database.connect() as conn:
        data = conn.execute(
            text("SELECT data FROM durable_records WHERE id = :id"), {"id": run_id}
        ).scalar_one()
    assert "injected engine fault" in _json(data)["failureReason"]


def test_killed_while_a_media_tool_runs(
    tmp_path: Path,
    runtime_database_url: str,
    database: Engine,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    """Killed while the confirmed image job runs: the batch runs again and finds its job."""

    def in_tool_call(_: str, events: Events) -> bool:
        kinds = [e["type"] for e in events]
        return "tool_call_progress" in kinds and "tool_call_resolved" not in kinds

    run_id, at_kill, summary = _crash_and_recover(
        tmp_path, runtime_database_url, database, processes, "tool", in_tool_call
    )
    assert summary["status_at_launch"] == "running"
    [dispatched] = _of(at_kill, "tool_call_dispatched")
    assert {k: json.loads(dispatched["payload"]["arguments"])[k] for k in BIG_IMAGES} == BIG_IMAGES
    progress = _of(at_kill, "tool_call_progress")[0]
    events, call_id = _check_finished(database, run_id, at_kill, summary)
    _restart_resumed(events, at_kill, summary)
    # The same call, with the same child workflow, before and after the crash; the finished
    # first round did not run again, the interrupted batch did (and found its workflow).
    assert call_id == dispatched["payload"]["toolCallId"]
    assert summary["childWorkflowIds"] == [progress["payload"]["workflowId"]]
    assert summary["rounds"] == [1] and _batches(summary) == [[call_id]]


@SQLITE_ONLY
def test_killed_as_the_cost_confirmation_resumes_the_run(
    tmp_path: Path,
    runtime_database_url: str,
    database: Engine,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    """Killed once the confirmed run is running again, with that step's result not yet
    recorded by DBOS: the next process runs the step again, and it must go on."""

    def resumed(_: str, events: Events) -> bool:
        return any(e["type"] == "run_resumed" for e in events)

    def forget_resume(run_id: str) -> None:
        _forget_step(tmp_path, database, run_id, "_run_cost_resolved")

    run_id, at_kill, summary = _crash_and_recover(
        tmp_path, runtime_database_url, database, processes, "tool", resumed, forget_resume
    )
    assert "tool_call_resolved" not in [e["type"] for e in at_kill]
    assert summary["status_at_launch"] == "running"
    events, call_id = _check_finished(database, run_id, at_kill, summary)
    _restart_resumed(events, at_kill, summary)
    assert len(_of(events, "run_cost_confirmation_resolved")) == 1
    assert summary["rounds"] == [1] and _batches(summary) == [[call_id]]


@SQLITE_ONLY
@pytest.mark.parametrize("pause_recorded", [True, False], ids=["recorded", "unrecorded"])
def test_killed_while_waiting_for_a_cost_confirmation(
    tmp_path: Path,
    runtime_database_url: str,
    database: Engine,
    processes: list[subprocess.Popen[bytes]],
    pause_recorded: bool,
) -> None:
    """Killed while it waits, with the pause step's result recorded by DBOS (the usual case)
    or not yet (the process died right after the step paused the run): the next process runs
    that step again, and it must find the run already waiting for the same call."""

    def waiting(run_id: str, events: Events) -> bool:
        if not any(e["type"] == "run_waiting_for_user" for e in events):
            return False
        return not pause_recorded or "ask_call_approval" in _dbos_steps(tmp_path, database, run_id)

    def forget_pause(run_id: str) -> None:
        _forget_step(tmp_path, database, run_id, "ask_call_approval")

    run_id, at_kill, summary = _crash_and_recover(
        tmp_path,
        runtime_database_url,
        database,
        processes,
        "cost",
        waiting,
        None if pause_recorded else forget_pause,
    )
    assert at_kill[-1]["type"] == "run_waiting_for_user"
    # A waiting run is not resumed by the restart; the confirmation sent to the new process
    # resumes it.
    assert summary["status_at_launch"] == "waiting_for_user"
    events, call_id = _check_finished(database, run_id, at_kill, summary)
    assert at_kill[-1]["payload"]["details"]["toolCallId"] == call_id
    new = [e["type"] for e in events[len(at_kill) :]]
    assert new[:2] == ["run_cost_confirmation_resolved", "run_resumed"], new
    assert [e["payload"]["reason"] for e in _of(events, "run_resumed")] == ["cost_confirmed"]
    assert summary["rounds"] == [1] and _batches(summary) == [[call_id]]
    assert summary["billingPreviews"] == [at_kill[-1]["payload"]["details"]["costApprovalPreview"]]
