"""`sogni-agent` workflow presets, `--keyframe`, `--no-filter` and the connection settings
from the environment (allowed hosts, timeout): the parts decided before any request."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from sogni_intelligence.agent_cli.arguments import (
    build_parser,
    check_mode_flags,
    reference_sources,
)
from sogni_intelligence.agent_cli.inputs import UsageError, connection, host_allowed
from sogni_intelligence.agent_cli.main import main, selected_mode
from sogni_intelligence.agent_cli.presets import (
    image_to_video,
    keyframe,
    storyboard_request,
    storyboard_scenes,
    storyboard_video,
)
from sogni_intelligence.tools.plans import normalise_plan


def parsed(*argv: str) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(list(argv))
    check_mode_flags(parser, args, selected_mode(args))
    return args


# --- flags -------------------------------------------------------------------------------------


def test_keyframes_parse_file_or_url_and_seconds() -> None:
    assert keyframe("end.png@3.5").model_dump() == {"source": "end.png", "at_seconds": 3.5}
    url = keyframe("https://u:p@cdn.test/a.png@0")
    assert (url.source, url.at_seconds) == ("https://u:p@cdn.test/a.png", 0.0)
    for bad in ("end.png", "@2", "end.png@soon", "end.png@61", "end.png@-1"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"FILE\|URL@SECONDS"):
            keyframe(bad)


def test_keyframe_images_are_sent_after_the_other_images() -> None:
    args = parsed(
        "--api-workflow", "image-to-video", "--workflow-prompt", "p",
        "--keyframe", "k1.png@1", "--ref-audio", "a.wav", "--ref-end", "e.png",
        "--keyframe", "k2.png@2", "--ref", "r.png",
    )  # fmt: skip
    assert [(s.flag, s.source, s.slot) for s in reference_sources(args)] == [
        ("--ref", "r.png", "referenceImage"),
        ("--ref-end", "e.png", "referenceImageEnd"),
        ("--keyframe", "k1.png", "keyframeImage1"),
        ("--keyframe", "k2.png", "keyframeImage2"),
        ("--ref-audio", "a.wav", "referenceAudio"),
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--api-workflow"], "needs --workflow-input"),
        (["--api-workflow", "anime"], "unknown preset 'anime'"),
        (["--api-workflow", "image-to-video"], "needs --workflow-prompt"),
        (["--api-workflow", "image-to-video", "--workflow-prompt", " "], "needs --workflow-prompt"),
        (
            ["--api-workflow", "storyboard-video", "--workflow-prompt", "p", "--workflow-input", "{}"],
            "drop --workflow-input",
        ),
        (["--api-workflow", "--workflow-input", "{}", "--workflow-prompt", "p"], "only with a preset"),
        (["--api-workflow", "image-to-video", "--workflow-prompt", "p", "--scenes", "2"], "--scenes"),
        (["--api-workflow", "storyboard-video", "--workflow-prompt", "p", "--scenes", "6"], "at most 5"),
        (["--list-workflows", "--no-filter"], "--no-filter works only with"),
        (["--list-workflows", "--keyframe", "k.png@1"], "--keyframe works only with"),
        (["--api-chat", "hi", "--timeout", "0"], "more than 0"),
    ],
)  # fmt: skip
def test_bad_preset_command_lines_are_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parsed(*argv)


def test_no_filter_is_accepted_where_a_request_takes_it() -> None:
    for argv in (["--api-chat", "hi"], ["--durable-chat", "hi"], ["--api-workflow", "--workflow-input", "{}"]):  # fmt: skip
        assert parsed(*argv, "--no-filter").no_filter is True


# --- presets -----------------------------------------------------------------------------------


def _sources(*argv: str) -> list[Any]:
    return reference_sources(
        parsed("--api-workflow", "image-to-video", "--workflow-prompt", "p", *argv)
    )


def test_image_to_video_animates_the_first_image_with_end_and_keyframes() -> None:
    args = parsed(
        "--api-workflow", "image-to-video", "--workflow-prompt", "waves roll in",
        "-c", "c.png", "--ref", "r.png", "--ref-end", "e.png",
        "--keyframe", "k1.png@1.5", "--keyframe", "k2.png@3",
    )  # fmt: skip
    plan = image_to_video("waves roll in", reference_sources(args), args.keyframe)
    [step] = plan["steps"]
    assert step["toolName"] == "animate_photo"
    assert step["arguments"] == {
        "prompt": "waves roll in",
        "sourceImageIndex": -1,
        "endImageIndex": -3,
        "keyframes": [{"imageIndex": -4, "atSeconds": 1.5}, {"imageIndex": -5, "atSeconds": 3.0}],
    }
    # The server's own planner takes the plan as it is (five uploaded images).
    normalise_plan(plan, media_references=[{"kind": "image", "url": "https://cdn.test/i.png"}] * 5)


def test_image_to_video_without_an_image_draws_the_keyframe_first() -> None:
    plan = image_to_video("a lighthouse at dusk", _sources(), [])
    draw, animate = plan["steps"]
    assert (
        draw["toolName"] == "generate_image"
        and draw["arguments"]["prompt"] == "a lighthouse at dusk"
    )
    assert animate["dependsOn"][0]["sourceStepId"] == draw["id"]
    assert animate["dependsOn"][0]["transform"] == "image_index"
    normalise_plan(plan)


def test_storyboard_asks_for_scenes_as_json_without_running_tools() -> None:
    body = storyboard_request("a fox's day", 4, "m", safe_content_filter=False)
    assert body["sogni_tool_execution"] is False and body["model"] == "m"
    schema = body["response_format"]["json_schema"]["schema"]["properties"]["scenes"]
    assert schema["minItems"] == schema["maxItems"] == 4
    assert body["safeContentFilter"] is False
    assert "safeContentFilter" not in storyboard_request("x", 2, None, safe_content_filter=True)


def test_storyboard_scenes_are_read_from_the_answer() -> None:
    def answer(content: str) -> dict[str, Any]:
        return {"choices": [{"message": {"role": "assistant", "content": content}}]}

    assert storyboard_scenes(answer('{"scenes": ["dawn", " ", "dusk", "night"]}'), 3) == [
        "dawn",
        "dusk",
    ]
    for content in ("not json", '{"scenes": []}', '["dawn"]', '{"scenes": [" "]}'):
        with pytest.raises(UsageError, match="storyboard"):
            storyboard_scenes(answer(content), 3)


def test_storyboard_video_is_a_keyframe_and_clip_per_scene_then_a_stitch() -> None:
    plan = storyboard_video(["dawn", "noon", "dusk"], "Day")
    assert [s["toolName"] for s in plan["steps"]] == [
        *("generate_image", "animate_photo") * 3,
        "stitch_video",
    ]
    stitch = plan["steps"][-1]
    assert [b["sourceStepId"] for b in stitch["dependsOn"]] == [
        "scene1_clip",
        "scene2_clip",
        "scene3_clip",
    ]
    normalise_plan(plan)
    assert [s["toolName"] for s in storyboard_video(["one"], "t")["steps"]] == [
        "generate_image",
        "animate_photo",
    ]


# --- environment -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed", "ok"),
    [
        ("https://api.sogni.ai", "api.sogni.ai", True),
        ("https://API.Sogni.ai/v1", " other.test , api.sogni.ai ", True),
        ("https://api.sogni.ai", "*.sogni.ai", True),
        ("https://evil-sogni.ai", "*.sogni.ai", False),
        ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
        ("http://127.0.0.1:9000", "127.0.0.1:8000", False),
        ("https://api.sogni.ai", "api.sogni.ai:443", True),
        ("https://api.sogni.ai.evil.test", "api.sogni.ai", False),
    ],
)
def test_allowed_hosts(url: str, allowed: str, ok: bool) -> None:
    assert host_allowed(url, allowed) is ok


def test_a_host_off_the_allow_list_is_refused_before_any_request() -> None:
    env = {"SOGNI_API_KEY": "k", "SOGNI_API_ALLOWED_HOSTS": "api.sogni.ai"}
    with pytest.raises(UsageError, match="not in SOGNI_API_ALLOWED_HOSTS"):
        connection("http://127.0.0.1:8000", None, env)
    assert connection("https://api.sogni.ai", None, env).base_url == "https://api.sogni.ai"


def test_timeout_from_flag_then_environment_then_default() -> None:
    env = {"SOGNI_API_KEY": "k", "SOGNI_HTTP_TIMEOUT_MS": "120000"}
    assert connection(None, None, env).timeout_s == 120.0
    assert connection(None, None, env, timeout=7).timeout_s == 7
    assert connection(None, None, {"SOGNI_API_KEY": "k"}).timeout_s == 300.0
    for bad in ("soon", "0", "-5", "nan", "inf"):
        with pytest.raises(UsageError, match="SOGNI_HTTP_TIMEOUT_MS"):
            connection(None, None, {**env, "SOGNI_HTTP_TIMEOUT_MS": bad})


def test_main_refuses_an_unlisted_host_with_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SOGNI_API_KEY", "k")
    monkeypatch.setenv("SOGNI_API_ALLOWED_HOSTS", "api.sogni.ai")
    assert main(["--list-api-models", "--api-base-url", "http://127.0.0.1:9"]) == 2
    assert "SOGNI_API_ALLOWED_HOSTS" in capsys.readouterr().err
