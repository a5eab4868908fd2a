"""ffmpeg and ffprobe as cancellable subprocesses.

The encoder is the static ffmpeg shipped in `imageio-ffmpeg` (the same on every machine);
ffprobe comes from the system (Debian `ffmpeg`). Cancelling the awaiting task kills the
process at once, so a cancelled media job stops using the CPU.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from functools import cache
from pathlib import Path
from typing import Any

from sogni_intelligence.errors import ServiceError


@cache
def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@cache
def ffprobe_exe() -> str:
    found = shutil.which("ffprobe")
    if found is None:
        raise ServiceError("ffprobe is not installed (Debian package ffmpeg)", 500)
    return found


class MediaProcessError(Exception):
    """A media subprocess failed; the message carries the end of its output."""


async def run_process(*argv: str, timeout_s: float = 600) -> bytes:
    """Run a command, return its stdout; kill it if the caller is cancelled or it times out."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    except BaseException:
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    if process.returncode != 0:
        tail = stderr.decode(errors="replace")[-1500:]
        raise MediaProcessError(f"{Path(argv[0]).name} failed ({process.returncode}): {tail}")
    return stdout


async def ffmpeg(*args: str, timeout_s: float = 600) -> None:
    await run_process(ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", *args, timeout_s=timeout_s)


async def probe(path: Path) -> dict[str, Any]:
    out = await run_process(
        ffprobe_exe(),
        "-v",
        "error",
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        str(path),
        timeout_s=60,
    )
    return json.loads(out)


def _rate(value: str | None) -> float | None:
    if not value or value in ("0/0", "0"):
        return None
    num, _, den = value.partition("/")
    try:
        return float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return None


def summarize(info: dict[str, Any]) -> dict[str, Any]:
    """The technical facts callers want from an ffprobe report."""
    streams = info.get("streams") or []
    fmt = info.get("format") or {}
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    out: dict[str, Any] = {
        "container": fmt.get("format_name"),
        "duration_seconds": float(fmt["duration"]) if fmt.get("duration") else None,
        "bit_rate": int(fmt["bit_rate"]) if fmt.get("bit_rate") else None,
    }
    if video:
        out.update(
            width=video.get("width"),
            height=video.get("height"),
            video_codec=video.get("codec_name"),
            fps=_rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate")),
            pixel_format=video.get("pix_fmt"),
        )
    if audio:
        out.update(
            audio_codec=audio.get("codec_name"),
            sample_rate=int(audio["sample_rate"]) if audio.get("sample_rate") else None,
            channels=audio.get("channels"),
        )
    return out
