"""Frames sampled from a video: scene cuts from frame-to-frame change, statistics over the
samples, and the few frames a vision model is shown (as data URIs).
"""

from __future__ import annotations

import base64
import io
import itertools
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sogni_intelligence.media.analysis.colours import palette
from sogni_intelligence.media.analysis.images import level_word, luma_of
from sogni_intelligence.media.ffmpeg import ffmpeg, probe, summarize

# --------------------------------------------------------------------------------------------
# Video.

SAMPLE_FPS = 2.0
MAX_SAMPLES = 240
CUT_SCORE = 0.3


def _histogram(frame: np.ndarray) -> np.ndarray:
    bins = (frame // 64).astype(np.int64)  # 4 levels per channel -> 64 bins
    codes = bins[..., 0] * 16 + bins[..., 1] * 4 + bins[..., 2]
    hist = np.bincount(codes.ravel(), minlength=64).astype(np.float64)
    return hist / max(1.0, hist.sum())


def _frame_change(a: np.ndarray, b: np.ndarray) -> float:
    """0..1: half pixel difference, half colour-histogram difference."""
    pixel = float(np.abs(a - b).mean() / 255)
    colour = float(np.abs(_histogram(a) - _histogram(b)).sum() / 2)
    return 0.5 * pixel + 0.5 * colour


async def sample_frames(path: Path, workdir: Path, duration: float | None) -> tuple[float, list]:
    """Small frames at an even rate (2 per second, fewer for long videos)."""
    rate = SAMPLE_FPS
    if duration and duration * rate > MAX_SAMPLES:
        rate = MAX_SAMPLES / duration
    await ffmpeg(
        "-i",
        str(path),
        "-an",
        "-vf",
        f"fps={rate:.5f},scale=160:-2:flags=area",
        "-frames:v",
        str(MAX_SAMPLES),
        str(workdir / "frame_%05d.png"),
    )
    return rate, sorted(workdir.glob("frame_*.png"))


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64)


def scenes_from_frames(frames: list[Path], rate: float, duration: float) -> dict[str, Any]:
    """Cuts where consecutive samples change a lot; per-scene times, palette and motion."""
    arrays = [_load(p) for p in frames]
    changes = [_frame_change(arrays[i - 1], arrays[i]) for i in range(1, len(arrays))]
    step = 1.0 / rate
    cuts = [i for i, change in enumerate(changes, start=1) if change > CUT_SCORE]
    bounds = [0, *cuts, len(arrays)]
    scenes = []
    for number, (first, last) in enumerate(itertools.pairwise(bounds), start=1):
        start = 0.0 if first == 0 else (first - 0.5) * step
        end = duration if last == len(arrays) else (last - 0.5) * step
        middle = arrays[(first + last - 1) // 2].astype(np.uint8)
        inner = changes[first : last - 1]
        motion = float(np.mean(inner)) if inner else 0.0
        brightness = float(np.mean([luma_of(a).mean() for a in arrays[first:last]]) / 255)
        scenes.append(
            {
                "scene": number,
                "start_seconds": round(start, 2),
                "end_seconds": round(min(end, duration), 2),
                "palette": palette(Image.fromarray(middle), colours=3),
                "brightness": round(brightness, 3),
                "motion": round(motion, 3),
                "motion_level": level_word(motion, ((0.02, "still"), (0.08, "some")), "a lot of"),
            }
        )
    return {
        "sampled_frames": len(arrays),
        "sample_rate_fps": round(rate, 3),
        "cut_times_seconds": [round((i - 0.5) * step, 2) for i in cuts],
        "scene_count": len(scenes),
        "scenes": scenes,
        "mean_change": round(float(np.mean(changes)), 3) if changes else 0.0,
    }


async def video_stats(path: Path, workdir: Path) -> dict[str, Any]:
    info = summarize(await probe(path))
    duration = info.get("duration_seconds") or 0.0
    rate, frames = await sample_frames(path, workdir, duration)
    if not frames:
        raise ValueError("no frames could be decoded from the video")
    if not duration:
        duration = len(frames) / rate
    stats: dict[str, Any] = {
        "duration_seconds": round(duration, 3),
        "fps": info.get("fps"),
        "width": info.get("width"),
        "height": info.get("height"),
        "video_codec": info.get("video_codec"),
        "has_audio": bool(info.get("audio_codec")),
    }
    if info.get("audio_codec"):
        stats["audio"] = {
            "codec": info.get("audio_codec"),
            "sample_rate": info.get("sample_rate"),
            "channels": info.get("channels"),
        }
    stats.update(scenes_from_frames(frames, rate, duration))
    return stats


async def frames_for_vision(path: Path, workdir: Path, duration: float, count: int) -> list:
    """(time, frame path) pairs spread over the video, at a size a vision model can read."""
    picked = []
    for i in range(count):
        at = duration * (i + 0.5) / count
        out = workdir / f"vision_{i:02d}.jpg"
        await ffmpeg(
            "-ss",
            f"{at:.3f}",
            "-i",
            str(path),
            "-frames:v",
            "1",
            "-vf",
            "scale='min(768,iw)':-2",
            str(out),
        )
        if out.exists():
            picked.append((round(at, 2), out))
    return picked


def data_uri(path: Path, max_edge: int = 1024) -> str:
    """A JPEG data URI of an image, scaled down for a vision model."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    rgb.thumbnail((max_edge, max_edge), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")
