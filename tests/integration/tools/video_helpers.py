"""Helpers for the video tool tests: run a tool by name, make test clips, and read the results
back independently (ffprobe for streams and lengths, decoded frames, audio loudness)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sogni_intelligence.media.ffmpeg import ffmpeg_exe
from sogni_intelligence.media.store import AssetRecord
from sogni_intelligence.tools.base import ToolContext, execute
from sogni_intelligence.tools.catalog import CATALOG
from tests.integration.tools.conftest import asset_file, ffprobe

# A flat grey clip: whatever a tool burns into it stands out clearly in the decoded frames.
GREY_SIZE = (320, 180)


async def run(ctx: ToolContext, name: str, **arguments: Any) -> dict:
    return await execute(CATALOG[name], arguments, ctx)


def check_video(path: Path, width: int, height: int, duration: float) -> dict:
    """The file decodes as H.264 (yuv420p) + AAC MP4 of this size and length (±0.1 s)."""
    info = ffprobe(path)
    streams = {s["codec_type"]: s for s in info["streams"]}
    assert streams["video"]["codec_name"] == "h264"
    assert streams["video"]["pix_fmt"] == "yuv420p"
    assert (streams["video"]["width"], streams["video"]["height"]) == (width, height)
    assert streams["audio"]["codec_name"] == "aac"
    assert "mp4" in info["format"]["format_name"]
    assert abs(float(info["format"]["duration"]) - duration) <= 0.1, info["format"]["duration"]
    return info


def audio_rms(path: Path, start: float = 0.0, length: float | None = None) -> float:
    """Loudness (RMS of 16-bit samples) of the whole track or of one stretch of it."""
    window = ["-ss", str(start), *(["-t", str(length)] if length is not None else [])]
    args = ["-v", "error", "-i", str(path), *window, "-vn", "-ac", "1", "-f", "s16le", "-"]
    raw = subprocess.run(
        [ffmpeg_exe(), *args],
        capture_output=True,
        check=True,
    ).stdout
    samples = np.frombuffer(raw, np.int16).astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


def frame_at(path: Path, seconds: float, out: Path) -> np.ndarray:
    """The decoded frame at `seconds` as an RGB float array (rows, columns, 3)."""
    args = ["-v", "error", "-y", "-ss", str(seconds), "-i", str(path), "-frames:v", "1"]
    subprocess.run([ffmpeg_exe(), *args, str(out)], check=True)
    with Image.open(out) as image:
        return np.asarray(image.convert("RGB")).astype(np.float64)


def differs(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute pixel difference of two frames (or two regions of frames)."""
    return float(np.abs(a - b).mean())


async def upload_file(ctx: ToolContext, path: Path) -> AssetRecord:
    record = await ctx.store.put_file(ctx.owner, path)
    ctx.media.add_upload(record)
    return record


def make_clip(
    path: Path,
    seconds: float,
    size: tuple[int, int] = (256, 144),
    audio: bool = True,
    pattern: str = "testsrc2",
    tone_hz: int = 440,
) -> Path:
    """A test clip: a lavfi video pattern (testsrc2, or e.g. color=c=blue) with a sine tone,
    or without any audio stream."""
    source = f"{pattern}=s={size[0]}x{size[1]}:r=25:d={seconds}"
    if pattern.startswith("color"):
        source = f"{pattern}:s={size[0]}x{size[1]}:r=25:d={seconds}"
    args = [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", source]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=f={tone_hz}:d={seconds}", "-c:a", "aac"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(args, check=True)
    return path


async def upload_video(
    ctx: ToolContext,
    tmp_path: Path,
    seconds: float,
    size: tuple[int, int] = (256, 144),
    audio: bool = True,
    pattern: str = "testsrc2",
    tone_hz: int = 440,
) -> AssetRecord:
    """A test clip (see `make_clip`) stored as the next video upload (-1, -2, ...)."""
    path = tmp_path / f"clip-{len(ctx.media.uploads['video'])}.mp4"
    return await upload_file(ctx, make_clip(path, seconds, size, audio, pattern, tone_hz))


async def upload_grey_clip(ctx: ToolContext, tmp_path: Path, seconds: float) -> AssetRecord:
    """A flat grey clip of GREY_SIZE stored as the next video upload (-1, -2, ...)."""
    return await upload_video(ctx, tmp_path, seconds, GREY_SIZE, pattern="color=c=gray")


async def grey_clip_output(ctx: ToolContext, result: dict[str, Any], seconds: float) -> Path:
    """The video a tool made from a grey clip, checked to decode at its size and length."""
    path = await asset_file(ctx, result)
    check_video(path, *GREY_SIZE, seconds)
    return path
