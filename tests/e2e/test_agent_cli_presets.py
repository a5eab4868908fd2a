"""`sogni-agent` workflow presets, `--keyframe`, `--no-filter` and its environment settings, as
a subprocess against the real server process (real model, real media tools).

The server adds one term to its content filter through the environment, so a refused prompt
needs no abusive text in the tests."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.e2e.conftest import RunningServer, running_server

pytestmark = pytest.mark.slow
TERM = "purple elephant"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = {"SOGNI_CONTENT_FILTER_EXTRA_TERMS": json.dumps([TERM])}
    with running_server(tmp_path_factory.mktemp("presets"), settings=settings) as running:
        yield running


def agent(server: RunningServer, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **server.env,
        "SOGNI_API_BASE_URL": server.url,
        "SOGNI_API_KEY": server.key,
        **env,
    }
    environment.pop("SOGNI_REST_ENDPOINT", None)
    return subprocess.run(
        [sys.executable, "-m", "sogni_intelligence.agent_cli.main", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def json_out(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def png(path: Path, color: tuple[int, int, int]) -> Path:
    Image.new("RGB", (320, 192), color).save(path)
    return path


def test_image_to_video_animates_the_ref_through_its_keyframe(
    server: RunningServer, tmp_path: Path
) -> None:
    start = png(tmp_path / "start.png", (200, 40, 40))
    middle = png(tmp_path / "middle.png", (40, 40, 200))
    workflow = json_out(
        agent(
            server,
            "--api-workflow",
            "image-to-video",
            "--workflow-prompt",
            "the red card turns blue",
            "--ref",
            str(start),
            "--keyframe",
            f"{middle}@1.5",
            "--watch-workflow",
            "--json",
        )
    )
    assert workflow["status"] == "completed", workflow
    [step] = workflow["steps"]
    assert step["toolName"] == "animate_photo"
    assert step["arguments"]["sourceImageIndex"] == -1
    assert step["arguments"]["keyframes"] == [{"imageIndex": -2, "atSeconds": 1.5}]
    flags = [ref["flag"] for ref in workflow["input"]["mediaReferences"]]
    assert flags == ["--ref", "--keyframe"]
    assert [a["mimeType"] for a in workflow["artifacts"]] == ["video/mp4"]


def test_storyboard_video_writes_scenes_with_the_model_then_stitches_their_clips(
    server: RunningServer,
) -> None:
    workflow = json_out(
        agent(
            server,
            "--api-workflow",
            "storyboard-video",
            "--workflow-prompt",
            "a paper boat sails from a puddle to the sea",
            "--scenes",
            "2",
            "--watch-workflow",
            "--json",
        )
    )
    assert workflow["status"] == "completed", workflow
    steps = workflow["steps"]
    assert [s["toolName"] for s in steps] == [
        *("generate_image", "animate_photo") * 2,
        "stitch_video",
    ]
    # Each scene's keyframe and clip share the prompt the model wrote for that scene.
    for image, clip in (steps[0:2], steps[2:4]):
        assert (
            image["arguments"]["prompt"]
            and image["arguments"]["prompt"] == clip["arguments"]["prompt"]
        )
    assert workflow["artifacts"][-1]["mimeType"] == "video/mp4"


def test_no_filter_lets_a_filtered_prompt_run(server: RunningServer, tmp_path: Path) -> None:
    plan = {"steps": [{"toolName": "generate_image", "arguments": {"prompt": f"a {TERM}"}}]}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    source = ("--api-workflow", "--workflow-input", f"@{tmp_path / 'plan.json'}")
    refused = agent(server, *source, "--watch-workflow", "--json")
    assert refused.returncode == 1, refused.stderr
    assert json.loads(refused.stdout)["status"] == "failed"
    events = json_out(
        agent(server, "--workflow-events", json.loads(refused.stdout)["workflowId"], "--json")
    )["events"]
    [failed] = [e for e in events if e["type"] == "step_failed"]
    assert failed["data"]["error"]["errorType"] == "CONTENT_FILTERED"

    allowed = json_out(agent(server, *source, "--no-filter", "--watch-workflow", "--json"))
    assert allowed["status"] == "completed", allowed


def test_allowed_hosts_and_timeout_from_the_environment(server: RunningServer) -> None:
    elsewhere = agent(server, "--list-api-models", SOGNI_API_ALLOWED_HOSTS="api.sogni.ai")
    assert elsewhere.returncode == 2
    assert "not in SOGNI_API_ALLOWED_HOSTS" in elsewhere.stderr
    listed = agent(server, "--list-api-models", "--json", SOGNI_API_ALLOWED_HOSTS="127.0.0.1")
    assert json_out(listed)["object"] == "list"

    slow = agent(
        server,
        "--api-chat", "Tell a long story about the sea.",
        "--api-tools", "none", "--max-tokens", "400", "--no-thinking",
        SOGNI_HTTP_TIMEOUT_MS="50",
    )  # fmt: skip
    assert slow.returncode == 1
    assert "within 0.05 s" in slow.stderr
