"""The pure parts of `sogni-agent` (its modes run against the real server in tests/e2e)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from sogni_intelligence.agent_cli.client import ApiError, error_message, parse_sse
from sogni_intelligence.agent_cli.inputs import (
    DEFAULT_BASE_URL,
    UsageError,
    connection,
    load_workflow_input,
)
from sogni_intelligence.agent_cli.main import main
from sogni_intelligence.agent_cli.output import Reporter, render_bar
from sogni_intelligence.agent_cli.references import check_sources, ordered_sources

BASE = "http://api.test"

# --- media references ------------------------------------------------------------------------


def test_references_are_ordered_by_flag_not_by_command_line_position() -> None:
    sources = ordered_sources(
        {
            "--ref-video": ["v.mp4"],
            "--ref-audio": ["a.wav", "b.mp3"],
            "--ref-end": ["end.png"],
            "--ref": ["ref.png"],
            "-c": ["c1.png", "c2.jpg"],
        }
    )
    assert [(s.flag, s.source, s.slot) for s in sources] == [
        ("-c", "c1.png", "contextImage1"),
        ("-c", "c2.jpg", "contextImage2"),
        ("--ref", "ref.png", "referenceImage"),
        ("--ref-end", "end.png", "referenceImageEnd"),
        ("--ref-audio", "a.wav", "referenceAudio"),
        ("--ref-audio", "b.mp3", "referenceAudio"),
        ("--ref-video", "v.mp4", "referenceVideo"),
    ]
    assert [s.kind for s in sources] == ["image"] * 4 + ["audio"] * 2 + ["video"]


def test_at_most_sixteen_context_images() -> None:
    with pytest.raises(UsageError, match="at most 16"):
        ordered_sources({"-c": [f"{n}.png" for n in range(17)]})


def test_local_references_are_checked_before_any_request(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"png")
    (tmp_path / "voice.wav").write_bytes(b"wav")
    (tmp_path / "notes.qqqz").write_bytes(b"?")
    check_sources(
        ordered_sources(
            {
                "--ref": [str(tmp_path / "a.png"), "https://cdn.example/x.png"],
                "--ref-audio": [str(tmp_path / "voice.wav")],
            }
        )
    )
    bad = [
        ({"--ref": [str(tmp_path / "missing.png")]}, "no such file"),
        ({"--ref": [str(tmp_path / "voice.wav")]}, "takes image files"),
        ({"--ref-video": [str(tmp_path / "a.png")]}, "takes video files"),
        ({"--ref": [str(tmp_path / "notes.qqqz")]}, "cannot tell the media type"),
        ({"--ref": ["ftp://host/a.png"]}, "only http"),
    ]
    for by_flag, message in bad:
        with pytest.raises(UsageError, match=message):
            check_sources(ordered_sources(by_flag))


# --- --workflow-input --------------------------------------------------------------------------


def test_workflow_input_from_text_file_and_stdin(tmp_path: Path) -> None:
    plan = {"title": "t", "steps": [{"toolName": "upscale_image", "arguments": {}}]}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    assert load_workflow_input(json.dumps(plan)) == plan
    assert load_workflow_input(f"@{tmp_path / 'plan.json'}") == plan
    assert load_workflow_input("@-", stdin=io.StringIO(json.dumps(plan))) == plan


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("@", "needs a file name"),
        ("@/no/such/plan.json", "cannot read"),
        ("{steps: []}", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_workflow_input_errors(value: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_workflow_input(value)


# --- configuration ---------------------------------------------------------------------------


def test_connection_precedence_and_errors() -> None:
    env = {
        "SOGNI_API_BASE_URL": "http://a:1/",
        "SOGNI_REST_ENDPOINT": "http://b:2",
        "SOGNI_API_KEY": "k",
    }
    assert connection("http://flag:3", None, env).base_url == "http://flag:3"
    assert connection(None, None, env).base_url == "http://a:1"
    assert connection(None, None, {**env, "SOGNI_API_BASE_URL": ""}).base_url == "http://b:2"
    assert connection(None, "flag-key", {}).model_dump() == {
        "base_url": DEFAULT_BASE_URL,
        "api_key": "flag-key",
        "timeout_s": 300.0,
    }
    with pytest.raises(UsageError, match="no API key"):
        connection(None, None, {"SOGNI_API_BASE_URL": "http://a:1"})
    with pytest.raises(UsageError, match="http"):
        connection("ftp://a", "k", {})


# --- error bodies and SSE ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"status":"error","message":"No such workflow.","errorCode":404}', "No such workflow."),
        (
            '{"error":{"message":"Invalid API key.","type":"authentication_error"}}',
            "Invalid API key.",
        ),
        ('{"error":"rate_limit","error_code":"126","error_message":"Slow down"}', "Slow down"),
        ('{"error":"quota_exceeded"}', "quota_exceeded"),
        ("<html>Bad gateway</html>", "<html>Bad gateway</html>"),
        ("", "the server answered HTTP 502 with an empty body"),
    ],
)
def test_error_message_reads_every_body_shape(body: str, message: str) -> None:
    assert error_message(502, body) == message


def test_api_error_names_the_status() -> None:
    assert str(ApiError(401, "Invalid API key.")) == "Invalid API key. (HTTP 401)"
    assert str(ApiError(0, "cannot reach x")) == "cannot reach x"


def test_parse_sse_frames() -> None:
    lines = [
        ": heartbeat",
        "",
        "id: 2",
        "event: step_started",
        'data: {"a":',
        "data: 1}",
        "",
        "data: plain text\r",
        "",
        "id: 3",
        'data: {"tail": true}',
    ]
    frames = list(parse_sse(lines))
    assert [(f.id, f.event, f.data) for f in frames] == [
        ("2", "step_started", {"a": 1}),
        (None, "message", "plain text"),
        ("3", "message", '{"tail": true}'),
    ]


# --- progress output -------------------------------------------------------------------------


def test_progress_is_deduplicated_and_results_move_to_stderr_under_json() -> None:
    out, err = io.StringIO(), io.StringIO()
    reporter = Reporter(True, out, err)
    reporter.bar("call-1", "render", 0.5, 65)
    reporter.bar("call-1", "render", 0.501, 65)
    reporter.note("started", once=True)
    reporter.note("started", once=True)
    reporter.result("saved x.png")
    reporter.emit({"ok": True})
    assert err.getvalue().splitlines() == [
        render_bar("render", 0.5, 65),
        "started",
        "saved x.png",
    ]
    assert "ETA 1m05s" in render_bar("render", 0.5, 65)
    assert json.loads(out.getvalue()) == {"ok": True}


@pytest.mark.parametrize(
    "argv",
    [
        ["--list-workflows", "--api-tools", "none"],
        ["--get-workflow", "wf_1", "--ref", "x.png"],
        ["--api-chat", "hi", "--workflow-input", "{}"],
        ["--durable-chat", "hi", "--no-api-tool-execution"],
        ["--durable-chat", "hi", "--thinking"],
        ["--api-workflow"],
    ],
)
def test_flags_outside_their_mode_are_usage_errors(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SOGNI_API_KEY", "k")
    assert main(argv) == 2
    assert "sogni-agent: error:" in capsys.readouterr().err


def test_missing_key_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOGNI_API_KEY", raising=False)
    assert main(["--list-workflows"]) == 2
