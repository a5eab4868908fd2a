"""`sogni-agent`'s long-job parts without a server: flags of the job modes, failure objects,
quiet and live progress, following a dropped stream, paging `--recent`, the doctor's
dependency order and replay records (the modes run against the real server in tests/e2e)."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from sogni_intelligence.agent_cli import session
from sogni_intelligence.agent_cli.arguments import build_parser
from sogni_intelligence.agent_cli.client import (
    ApiError,
    SseFrame,
    StreamDropped,
    error_code,
    retry_after_of,
)
from sogni_intelligence.agent_cli.doctor import run_checks, tiny_png
from sogni_intelligence.agent_cli.failures import api_failure
from sogni_intelligence.agent_cli.inputs import UsageError, load_run_record
from sogni_intelligence.agent_cli.jobs import created_since, not_finished, status_lines, title_of
from sogni_intelligence.agent_cli.main import main
from sogni_intelligence.agent_cli.output import Reporter, report_workflow_event
from sogni_intelligence.agent_cli.replays import replay_lines
from sogni_intelligence.agent_cli.session import Context, follow, record_kind


class FakeClient:
    """Answers `data`/`request` from a function of (method, path, params) and replays
    scripted streams, recording the cursor of every connection."""

    base_url = "http://api.test"
    has_key = True

    def __init__(self, answer: Any = None, streams: list[list[Any]] | None = None) -> None:
        self.answer = answer
        self.streams = streams or []
        self.cursors: list[int | None] = []
        self.calls: list[tuple[str, str, dict[str, Any] | None]] = []

    def data(self, method: str, path: str, **kwargs: Any) -> Any:
        self.calls.append((method, path, kwargs.get("params")))
        return self.answer(method, path, kwargs.get("params"))

    request = data

    def stream(self, path: str, after: int | None = None) -> Iterator[SseFrame]:
        self.cursors.append(after)
        for item in self.streams.pop(0):
            if isinstance(item, Exception):
                raise item
            yield item


def context(client: FakeClient, **args: Any) -> Context:
    reporter = Reporter(False, io.StringIO(), io.StringIO(), tty=False)
    return Context(argparse.Namespace(**args), client, reporter)  # type: ignore[arg-type]


# --- the command line ------------------------------------------------------------------------


def test_recent_hours_default() -> None:
    parser = build_parser()
    assert parser.parse_args(["--recent"]).recent == 24.0
    assert parser.parse_args(["--recent", "2.5"]).recent == 2.5


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--api-workflow", "--workflow-input", "{}", "--detach", "--watch-workflow"],
            "contradict",
        ),
        (["--status", "wf_1", "--wait"], "--wait works only with --result"),
        (["--get-workflow", "wf_1", "--status-filter", "failed"], "--status-filter works only"),
        (["--get-replay", "r1", "--offset", "3"], "--offset works only with --list-workflows"),
        (["--ingest-replay", "/no/such/record.json"], "cannot read --ingest-replay file"),
        (["--list-api-models", "--detach"], "--detach works only"),
        (["--recent", "0"], "must be more than 0"),
        (["--list-api-models", "--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_job_flags_are_checked_and_json_gets_a_failure_object(
    argv: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SOGNI_API_KEY", "k")
    assert main([*argv, "--json"]) == 2
    captured = capsys.readouterr()
    failure = json.loads(captured.out)
    assert failure["success"] is False and failure["errorCode"] == "usage"
    assert message in failure["error"] and message in captured.err
    assert failure["retryable"] is False and "--help" in failure["hint"]


def test_doctor_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOGNI_API_KEY", raising=False)
    assert main(["--status", "wf_1"]) == 2
    # With nothing listening, every check fails, but the missing key is no usage error.
    assert main(["--doctor", "--api-base-url", "http://127.0.0.1:9"]) == 1


def test_record_kind_by_prefix() -> None:
    assert record_kind("run_abc") == "run" and record_kind("wf_abc") == "workflow"
    with pytest.raises(UsageError, match="neither a run id"):
        record_kind("tpl_abc")


# --- failures --------------------------------------------------------------------------------


def test_error_codes_and_retry_after_from_every_body_shape() -> None:
    openai = {"error": {"message": "m", "code": "invalid_api_key"}, "errorCode": 401}
    assert error_code(openai) == "invalid_api_key"
    assert error_code({"status": "error", "errorCode": 126}) == 126
    assert error_code({"error": "rate_limit", "error_code": "4081"}) == "4081"
    assert error_code({"error": {"message": "m", "code": None}}) is None
    assert retry_after_of({"retry_after": 20}, "5") == 20
    assert retry_after_of({"retryAfter": 7}, None) == 7
    assert retry_after_of({}, "12") == 12
    assert retry_after_of(None, "Wed, 21 Oct 2026 07:28:00 GMT") is None


def test_failure_objects_say_whether_and_when_to_retry() -> None:
    limited = api_failure(ApiError(429, "Too many requests.", "rate_limited", 20.0)).as_json()
    assert limited == {
        "success": False,
        "error": "Too many requests. (HTTP 429)",
        "errorCode": "rate_limited",
        "retryable": True,
        "hint": "rate limited: retry after 20 s",
        "retryAfter": 20.0,
    }
    key = api_failure(ApiError(401, "Invalid API key.", "invalid_api_key"))
    assert not key.retryable and "SOGNI_API_KEY" in key.hint
    refused = api_failure(ApiError(0, "cannot reach http://x"))
    assert refused.code == "unreachable" and refused.retryable and "--api-base-url" in refused.hint
    assert api_failure(ApiError(404, "No such workflow.")).code == 404
    assert api_failure(ApiError(503, "restarting")).retryable


def test_not_finished_names_the_way_forward() -> None:
    running = not_finished("run", {"runId": "run_1", "status": "running"}, waited=False)
    assert running.exit_status == 3 and running.retryable
    assert running.message == "run run_1 is not finished yet (status running)"
    assert "--result run_1 --wait" in running.hint
    paused = not_finished("workflow", {"workflowId": "wf_1", "status": "waiting_for_user"}, True)
    assert not paused.retryable and "--resume-workflow wf_1" in paused.hint
    assert paused.as_json()["status"] == "waiting_for_user"


# --- progress --------------------------------------------------------------------------------


def test_quiet_keeps_results_only() -> None:
    out, err = io.StringIO(), io.StringIO()
    reporter = Reporter(False, out, err, quiet=True, tty=False)
    reporter.note("uploading")
    reporter.bar("k", "render", 0.5)
    reporter.step("s", "step a", "started")
    reporter.result("done")
    assert err.getvalue() == "" and out.getvalue() == "done\n"


def test_steps_are_lines_named_by_their_start() -> None:
    err = io.StringIO()
    reporter = Reporter(False, io.StringIO(), err, tty=False)
    reporter.step("step:a", "step a (generate_image)", "started")
    reporter.step("step:a", "step a", "completed")
    reporter.step("step:b", "step b", "failed", "out of memory")
    reporter.step("rounds", None, "completed")  # never started: nothing to show
    assert err.getvalue().splitlines() == [
        "step a (generate_image) started",
        "step a (generate_image) completed",
        "step b failed: out of memory",
    ]


def test_live_display_on_a_terminal() -> None:
    out, err = io.StringIO(), io.StringIO()
    reporter = Reporter(False, out, err, tty=True)
    reporter.note("workflow wf_1 running")
    reporter.step("step:a", "step a (generate_image)", "started")
    reporter.bar("call", "render", 0.4, 30)
    reporter.step("step:a", None, "failed", "no GPU")
    reporter.result("workflow wf_1: failed")
    shown = err.getvalue()
    for text in ("workflow wf_1 running", "step a (generate_image)", "render", "no GPU"):
        assert text in shown
    assert out.getvalue() == "workflow wf_1: failed\n"


def test_a_steps_own_progress_is_a_bar_with_its_eta() -> None:
    err = io.StringIO()
    reporter = Reporter(False, io.StringIO(), err, tty=True)
    report_workflow_event(
        reporter, "wf_1", {"type": "step_started", "data": {"stepId": "clip", "toolName": "v"}}
    )
    tick = {"stepId": "clip", "progress": 0.4, "etaSeconds": 3.0, "message": "encoding"}
    report_workflow_event(reporter, "wf_1", {"type": "workflow_progress", "data": tick})
    reporter.result("workflow wf_1: completed")
    shown = err.getvalue()
    assert "step clip encoding" in shown and "40%" in shown, shown


# --- following -------------------------------------------------------------------------------


def frame(sequence: int) -> SseFrame:
    return SseFrame(id=str(sequence), event="step_started", data={"sequence": sequence})


def test_follow_resumes_after_the_last_event_when_the_stream_drops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(session.time, "sleep", lambda s: None)
    statuses = iter(["running", "completed"])
    client = FakeClient(
        streams=[[frame(0), frame(1), StreamDropped(0, "broke")], [frame(1), frame(2)]]
    )
    seen: list[int] = []
    record = follow(
        context(client),
        "/stream",
        lambda: {"status": next(statuses)},
        lambda event: seen.append(event["sequence"]),
    )
    assert record == {"status": "completed"}
    assert client.cursors == [None, 1] and seen == [0, 1, 2]


# --- --recent, --status ----------------------------------------------------------------------


def test_recent_pages_back_until_a_record_is_older_than_the_window() -> None:
    now = datetime.now(UTC)

    def page(method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        ages = [[1, 2], [3, 30], [40]][params["offset"] // 2]
        workflows = [
            {
                "workflowId": f"wf_{h}",
                "timestamps": {"createdAt": (now - timedelta(hours=h)).isoformat()},
            }
            for h in ages
        ]
        return {"workflows": workflows, "next": params["offset"] + 2}

    client = FakeClient(page)
    found = created_since(context(client), "workflow", now - timedelta(hours=24), "completed")
    assert [w["workflowId"] for w in found] == ["wf_1", "wf_2", "wf_3"]
    assert [params["offset"] for _, _, params in client.calls] == [0, 2]
    assert all(params["status"] == "completed" for _, _, params in client.calls)


def test_titles_and_status_lines() -> None:
    run = {
        "runId": "run_1",
        "status": "running",
        "request": {"messages": [{"role": "user", "content": "draw  a\nfox " * 20}]},
        "toolCalls": [{}, {}],
        "timestamps": {"createdAt": "2026-01-01T00:00:00+00:00", "updatedAt": "u"},
        "finalResponse": {"content": "not yet shown"},
    }
    title = title_of("run", run)
    assert title.startswith("draw a fox draw") and len(title) == 72 and title.endswith("…")
    lines = status_lines("run", run)
    assert lines[0] == "run run_1: running" and "  tool calls: 2" in lines
    assert lines[-1] == "  wait for it: sogni-agent --result run_1 --wait"
    assert "not yet shown" not in "\n".join(lines)


# --- doctor ----------------------------------------------------------------------------------


def test_tiny_png_is_a_png() -> None:
    with Image.open(io.BytesIO(tiny_png())) as image:
        image.load()
        assert image.size == (1, 1) and image.mode == "RGB"


def test_doctor_reports_the_first_failure_and_skips_what_needs_it() -> None:
    def refuse(method: str, path: str, params: Any) -> Any:
        if path == "/health":
            return {"status": "ok", "version": "9"}
        raise ApiError(401, "Invalid API key.", "invalid_api_key")

    checks = {check.name: check for check in run_checks(context(FakeClient(refuse)))}
    assert checks["server"].ok and checks["server"].hint is None
    assert not checks["key"].ok and "SOGNI_API_KEY" in (checks["key"].hint or "")
    for name in ("models", "completion", "upload"):
        assert checks[name].detail == "not run: key failed"


# --- replays ---------------------------------------------------------------------------------


def test_run_record_files_are_checked_before_any_request(tmp_path: Path) -> None:
    good = {"run_id": "r1", "rounds": []}
    (tmp_path / "r.json").write_text(json.dumps(good))
    assert load_run_record(str(tmp_path / "r.json")) == good
    assert load_run_record("-", stdin=io.StringIO('{"runId": "r2"}')) == {"runId": "r2"}
    for text, message in [("[]", "must be a JSON object"), ('{"rounds": []}', "has no run_id")]:
        with pytest.raises(UsageError, match=message):
            load_run_record("-", stdin=io.StringIO(text))


def test_replay_lines() -> None:
    record = {
        "run_id": "r1",
        "model_id": "m",
        "schema_version": 1,
        "user_request": "draw a fox",
        "final_response": "here it is",
        "rounds": [
            {"round": 0, "tool_calls": [{"name": "generate_image"}]},
            {"round": 1, "tool_calls": []},
        ],
    }
    assert replay_lines(record, 0) == [
        "replay r1  1970-01-01T00:00:00+00:00  model m  schema 1",
        "  request:  draw a fox",
        "  round 0  1 tool calls: generate_image",
        "  round 1  0 tool calls",
        "  response: here it is",
    ]
