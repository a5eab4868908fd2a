"""extract_metadata, analyze_image and analyze_video on real files (Pillow, ffprobe, ffmpeg)."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from sogni_intelligence.media.ffmpeg import ffmpeg_exe
from sogni_intelligence.media.store import AssetRecord
from sogni_intelligence.tools.analysis_tools import TOOLS
from sogni_intelligence.tools.audio_tools import TOOLS as AUDIO_TOOLS
from sogni_intelligence.tools.base import ToolContext, execute

from .conftest import upload_image

BY_NAME = {tool.name: tool for tool in [*TOOLS, *AUDIO_TOOLS]}


async def run(ctx: ToolContext, name: str, **arguments):
    return await execute(BY_NAME[name], arguments, ctx)


async def upload_jpeg_with_exif(ctx: ToolContext) -> AssetRecord:
    image = Image.new("RGB", (200, 100), (30, 160, 60))
    exif = Image.Exif()
    exif[0x010F] = "SogniCam"  # Make
    exif[0x0110] = "Model T"  # Model
    exif[0x0131] = "pytest"  # Software
    exif.get_ifd(0x8769)[0x9003] = "2024:05:06 07:08:09"  # DateTimeOriginal
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif.tobytes())
    record = await ctx.store.put_bytes(ctx.owner, out.getvalue())
    ctx.media.add_upload(record)
    return record


async def upload_video(ctx: ToolContext, tmp_path: Path, *lavfi: str, name: str) -> AssetRecord:
    """Encode a video with ffmpeg's lavfi sources, store it and register it as an upload."""
    path = tmp_path / f"{name}.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *lavfi, str(path)],
        check=True,
        timeout=60,
    )
    record = await ctx.store.put_file(ctx.owner, path)
    ctx.media.add_upload(record)
    return record


async def test_extract_metadata_of_an_uploaded_image_reads_exif(ctx):
    record = await upload_jpeg_with_exif(ctx)
    result = await run(ctx, "extract_metadata", mediaType="image", sourceImageIndex=-1)

    assert result["ok"] is True, result
    assert result["output_assets"] == [] and result["indices"] == [] and result["urls"] == []
    assert result["media_type"] == "image"
    assert result["source"]["asset_id"] == record.id
    meta = result["metadata"]
    assert meta["format"] == "JPEG" and meta["mode"] == "RGB"
    assert (meta["width"], meta["height"]) == (200, 100)
    assert meta["file_size_bytes"] == record.size_bytes
    assert meta["exif"]["Make"] == "SogniCam"
    assert meta["exif"]["Model"] == "Model T"
    assert meta["exif"]["DateTimeOriginal"] == "2024:05:06 07:08:09"
    assert "200×100" in result["answer"]
    assert ctx.media.generated["image"] == []

    legacy = await run(ctx, "extract_metadata", fileIndex=0)
    assert legacy["source"]["asset_id"] == record.id


async def test_extract_metadata_of_generated_audio(ctx):
    speech = await run(
        ctx, "generate_speech", prompt="Metadata please.", outputFormat="flac", seed=1
    )
    result = await run(ctx, "extract_metadata", mediaType="audio")

    assert result["ok"] is True, result
    assert result["source"]["asset_id"] == speech["output_assets"][0]["asset_id"]
    meta = result["metadata"]
    assert meta["audio_codec"] == "flac"
    assert meta["sample_rate"] == 22050 and meta["channels"] == 1
    assert meta["duration_seconds"] > 0.3
    assert [s["type"] for s in meta["streams"]] == ["audio"]

    by_index = await run(ctx, "extract_metadata", audioSourceIndex=0)
    assert by_index["source"]["asset_id"] == result["source"]["asset_id"]


async def test_extract_metadata_of_an_uploaded_video(ctx, tmp_path):
    record = await upload_video(
        ctx,
        tmp_path,
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25:duration=2",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=2:sample_rate=44100",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        name="testsrc",
    )
    result = await run(ctx, "extract_metadata", sourceVideoIndex=-1)

    assert result["ok"] is True, result
    assert result["media_type"] == "video"
    assert result["source"]["asset_id"] == record.id
    meta = result["metadata"]
    assert meta["width"] == 320 and meta["height"] == 240
    assert meta["fps"] == pytest.approx(25.0)
    assert meta["video_codec"] == "h264" and meta["audio_codec"] == "aac"
    assert meta["sample_rate"] == 44100 and meta["channels"] == 1
    assert meta["duration_seconds"] == pytest.approx(2.0, abs=0.1)
    assert meta["bit_rate"] > 0
    assert {s["type"] for s in meta["streams"]} == {"video", "audio"}
    assert "h264" in result["answer"] and "aac" in result["answer"]

    legacy = await run(ctx, "extract_metadata", mediaType="video", fileIndex=0)
    assert legacy["source"]["asset_id"] == record.id


@pytest.mark.parametrize(
    "arguments",
    [
        {},
        {"mediaType": "video"},
        {"fileIndex": 0},
        {"sourceImageIndex": -1},
        {"audioSourceIndex": 0},
    ],
)
async def test_extract_metadata_without_media_is_asset_not_found(ctx, arguments):
    result = await run(ctx, "extract_metadata", **arguments)
    assert result["ok"] is False
    assert result["error_type"] == "ASSET_NOT_FOUND", result


async def test_analyze_image_computed_answer_for_a_solid_colour(ctx):
    await upload_image(ctx, (320, 240), "orange")
    result = await run(
        ctx, "analyze_image", query="What is in this picture?", analysisType="describe"
    )

    assert result["ok"] is True, result
    assert result["computed"] is True
    assert result["backend"] == "computed-statistics"
    assert result["output_assets"] == [] and result["indices"] == []
    assert "computed" in result["answer"]
    stats = result["analysis"]["image"]
    dominant = stats["palette"][0]
    assert dominant["name"] == "orange" and dominant["hex"] == "#ffa500"
    assert dominant["share"] > 0.9
    assert "orange" in result["answer"]
    assert stats["orientation"] == "landscape" and stats["aspect_ratio"] == "4:3"
    assert (stats["width"], stats["height"]) == (320, 240)
    assert ctx.media.generated["image"] == []


async def test_analyze_image_says_ocr_is_not_available(ctx):
    await upload_image(ctx, (64, 64), "white")
    result = await run(ctx, "analyze_image", query="Read the text", analysisType="ocr")
    assert result["ok"] is True
    assert "OCR" in result["answer"] and "not available" in result["answer"]
    assert result["analysis"]["image"]["orientation"] == "square"


async def test_analyze_image_compares_two_images(ctx):
    await upload_image(ctx, (320, 240), "orange")
    await upload_image(ctx, (320, 240), "green")
    result = await run(
        ctx,
        "analyze_image",
        query="What changed?",
        analysisType="compare",
        sourceImageIndex=-1,
        compareImageIndex=-2,
    )

    assert result["ok"] is True, result
    comparison = result["analysis"]["comparison"]
    assert comparison["same_size"] is True
    assert comparison["similarity"] < 0.8
    assert comparison["changed_pixel_fraction"] > 0.9
    assert comparison["dominant_colour_shift"]["from"].startswith("orange")
    assert comparison["dominant_colour_shift"]["to"].startswith("green")
    assert "orange" in result["answer"] and "green" in result["answer"]
    assert result["compare_source"]["index"] == -2

    same = await run(ctx, "analyze_image", query="Same?", sourceImageIndex=-1, compareImageIndex=-1)
    assert same["analysis"]["comparison"]["similarity"] == 1.0


async def test_compare_needs_a_second_image(ctx):
    await upload_image(ctx)
    result = await run(ctx, "analyze_image", query="Compare", analysisType="compare")
    assert result["ok"] is False and result["error_type"] == "ASSET_NOT_FOUND"


async def test_analyze_video_finds_the_cut_between_two_colours(ctx, tmp_path):
    await upload_video(
        ctx,
        tmp_path,
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=160x120:d=2:r=10",
        "-f",
        "lavfi",
        "-i",
        "color=c=blue:s=160x120:d=2:r=10",
        "-filter_complex",
        "[0:v][1:v]concat=n=2:v=1[v]",
        "-map",
        "[v]",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        name="halves",
    )
    result = await run(ctx, "analyze_video", query="What happens?", analysisType="scene")

    assert result["ok"] is True, result
    assert result["computed"] is True and "computed" in result["answer"]
    assert result["output_assets"] == []
    video = result["analysis"]["video"]
    assert video["duration_seconds"] == pytest.approx(4.0, abs=0.1)
    assert (video["width"], video["height"]) == (160, 120)
    assert video["fps"] == pytest.approx(10.0)
    assert video["scene_count"] == 2
    assert len(video["cut_times_seconds"]) == 1
    assert video["cut_times_seconds"][0] == pytest.approx(2.0, abs=0.5)
    first, second = video["scenes"]
    assert first["palette"][0]["name"] == "red"
    assert second["palette"][0]["name"] == "blue"
    assert first["start_seconds"] == 0.0 and second["end_seconds"] == pytest.approx(4.0, abs=0.1)
    assert "2 scenes" in result["answer"]


class FakeVision:
    def __init__(self, answer: str = "A bright orange square.", fail: bool = False) -> None:
        self.answer = answer
        self.fail = fail
        self.calls: list[tuple[str, list[str]]] = []

    async def __call__(self, prompt: str, images: list[str]) -> str:
        self.calls.append((prompt, images))
        if self.fail:
            raise RuntimeError("vision backend down")
        return self.answer


async def test_analyze_image_asks_the_vision_model_when_there_is_one(ctx):
    vision = FakeVision()
    ctx.services.vision_llm = vision
    await upload_image(ctx, (320, 240), "orange")
    result = await run(ctx, "analyze_image", query="What colour dominates?", detailed=True)

    assert result["ok"] is True, result
    assert result["answer"] == "A bright orange square."
    assert result["computed"] is False and result["backend"] == "vision-llm"
    ((prompt, images),) = vision.calls
    assert "What colour dominates?" in prompt
    assert len(images) == 1 and images[0].startswith("data:image/jpeg;base64,")
    assert result["analysis"]["image"]["palette"][0]["name"] == "orange"


async def test_analyze_video_sends_sampled_frames_to_the_vision_model(ctx, tmp_path):
    vision = FakeVision("Red, then blue.")
    ctx.services.vision_llm = vision
    await upload_video(
        ctx,
        tmp_path,
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=10:duration=3",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        name="vision",
    )
    result = await run(ctx, "analyze_video", query="Summarize", analysisType="summary")

    assert result["ok"] is True, result
    assert result["answer"] == "Red, then blue." and result["computed"] is False
    ((prompt, images),) = vision.calls
    assert len(images) == 6 and all(i.startswith("data:image/jpeg;base64,") for i in images)
    assert "Summarize" in prompt and "frame 1 at" in prompt


async def test_a_failing_vision_model_falls_back_to_the_computed_answer(ctx):
    ctx.services.vision_llm = FakeVision(fail=True)
    await upload_image(ctx, (100, 100), "orange")
    result = await run(ctx, "analyze_image", query="Describe")
    assert result["ok"] is True
    assert result["computed"] is True and "computed" in result["answer"]
    assert any("vision model failed" in w for w in result["warnings"])


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("analyze_image", {"query": "Describe"}),
        ("analyze_image", {"query": "Describe", "sourceImageIndex": 0}),
        ("analyze_image", {"query": "Describe", "sourceImageIndex": -1}),
        ("analyze_video", {"query": "Summarize"}),
        ("analyze_video", {"query": "Summarize", "sourceVideoIndex": -2}),
    ],
)
async def test_nothing_to_analyze_is_asset_not_found(ctx, tool, arguments):
    result = await run(ctx, tool, **arguments)
    assert result["ok"] is False
    assert result["error_type"] == "ASSET_NOT_FOUND", result


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("analyze_image", {"query": "  "}),
        ("analyze_image", {}),
        ("analyze_image", {"query": "x", "analysisType": "poetry"}),
        ("analyze_video", {"query": "x", "analysisType": "describe"}),
        ("extract_metadata", {"mediaType": "model"}),
        ("extract_metadata", {"fileIndex": -1}),
    ],
)
async def test_bad_analysis_arguments(ctx, tool, arguments):
    result = await run(ctx, tool, **arguments)
    assert result["ok"] is False
    assert result["error_type"] == "PARAMETER_INVALID", result
