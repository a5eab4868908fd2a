"""A composed workflow through the official `sogni-client` SDK against the real server process:
`chat.hosted.execute_tool("compose_workflow")` plans it, `workflows.start` runs the returned
steps unchanged, and the run finishes with a stitched, scored video."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest
from sogni_client import SogniClient

from sogni_intelligence.media.ffmpeg import ffprobe_exe
from tests.e2e.conftest import RunningServer

pytestmark = pytest.mark.slow

BUDGET = 20


async def test_compose_workflow_with_the_sdk_then_run_it(
    server: RunningServer, tmp_path: Path
) -> None:
    sogni = await SogniClient.create(
        api_key=server.key, rest_endpoint=server.url, disable_socket=True, app_source="e2e"
    )
    try:
        response = await sogni.chat.hosted.execute_tool(
            tool="compose_workflow",
            arguments={
                "brief": "a paper lantern drifts over a quiet lake",
                "scene_count": 2,
                "duration_seconds": 4,
                "aspect_ratio": "1:1",
                "include_audio": True,
                "max_estimated_capacity_units": BUDGET,
            },
        )
        assert response["status"] == "success" and response["data"]["tool"] == "compose_workflow"
        result = response["data"]["result"]
        assert result["ok"] is True and result["fits_budget"] is True
        assert 0 < result["estimated_capacity_units"] <= BUDGET
        steps = result["steps"]
        assert [step["id"] for step in steps] == ["scene_1", "scene_2", "clips", "music", "final"]

        workflow = await sogni.workflows.start(
            input={"title": result["title"], "steps": steps},
            confirm_cost=True,
            max_estimated_capacity_units=BUDGET,
        )
        statuses = [
            frame["data"]["status"]
            async for frame in sogni.workflows.stream_events(workflow["workflowId"])
        ]
        assert statuses[-1] == "completed"
        final = await sogni.workflows.get(workflow["workflowId"])
        assert final["status"] == "completed" and final["title"] == result["title"]
        kinds = [artifact["kind"] for artifact in final["artifacts"]]
        assert sorted(kinds) == ["audio", "image", "image", "video", "video", "video"]
        stitched = [a for a in final["artifacts"] if a.get("stepId") == "final"]
        assert len(stitched) == 1 and stitched[0]["kind"] == "video"
        download = httpx.get(stitched[0]["url"], timeout=30)
        assert download.status_code == 200 and download.headers["content-type"] == "video/mp4"
        video = tmp_path / "final.mp4"
        video.write_bytes(download.content)
        probe = subprocess.run(
            [ffprobe_exe(), "-v", "error", "-print_format", "json", "-show_streams", str(video)],
            capture_output=True,
            check=True,
            timeout=60,
        )
        streams = json.loads(probe.stdout)["streams"]
        # Two 2 s clips joined by a 0.5 s dissolve, under the generated music.
        assert sorted(stream["codec_type"] for stream in streams) == ["audio", "video"]
        seconds = float(next(s for s in streams if s["codec_type"] == "video")["duration"])
        assert 3.0 <= seconds <= 4.1
    finally:
        await sogni.aclose()
