"""ffmpeg and ffprobe as cancellable subprocesses.

The encoder is the static ffmpeg shipped in `imageio-ffmpeg` (the same on every machine);
ffprobe comes from the system (Debian `ffmpeg`). Cancelling the awaiting task kills the
process at once, so a cancelled media job stops using the CPU. Both run below the server's
priority (`MEDIA_NICE`): an encode takes every core the server leaves idle, but requests,
event streams and token streams on the same machine are served first.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from functools import cache
from pathlib import Path
from typing import Any

from sogni_intelligence.errors import ServiceError
from sogni_intelligence.media.progress import Progress

#: Nice levels below the server at which media subprocesses run (Linux and macOS `nice`).
MEDIA_NICE = 5


@cache
def _lowered() -> tuple[str, ...]:
    """The prefix that starts a command at MEDIA_NICE; none where there is no `nice`."""
    found = shutil.which("nice")
    return (found, "-n", str(MEDIA_NICE)) if found else ()


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


#: How often ffmpeg writes a progress block (its default is every half second).
PROGRESS_PERIOD_S = 0.1


class MediaProcessError(Exception):
    """A media subprocess failed; the message carries the end of its output."""


async def run_process(*argv: str, timeout_s: float = 600) -> bytes:
    """Run a command, return its stdout; kill it if the caller is cancelled or it times out."""
    process = await asyncio.create_subprocess_exec(
        *_lowered(), *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    except BaseException:
        await _kill(process)
        raise
    _check_exit(Path(argv[0]).name, process, stderr)
    return stdout


async def _kill(process: asyncio.subprocess.Process) -> None:
    """Stop a process the caller gave up on (cancelled, timed out), and reap it."""
    if process.returncode is None:
        process.kill()
        await process.wait()


def _check_exit(name: str, process: asyncio.subprocess.Process, stderr: bytes) -> None:
    if process.returncode != 0:
        tail = stderr.decode(errors="replace")[-1500:]
        raise MediaProcessError(f"{name} failed ({process.returncode}): {tail}")


async def ffmpeg(
    *args: str,
    timeout_s: float = 600,
    progress: Progress | None = None,
    duration_s: float | None = None,
) -> None:
    """Run ffmpeg. With `progress` and the output's `duration_s`, report the fraction written
    as ffmpeg itself tells it (`-progress pipe:1`: `out_time_us` against the duration)."""
    argv = (ffmpeg_exe(), "-hide_banner", "-nostdin", "-y")
    if progress is None or not duration_s or duration_s <= 0:
        await run_process(*argv, *args, timeout_s=timeout_s)
        return
    process = await asyncio.create_subprocess_exec(
        *_lowered(),
        *argv,
        "-progress",
        "pipe:1",
        "-stats_period",
        str(PROGRESS_PERIOD_S),
        "-nostats",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    # Read at once, so that a chatty stderr cannot fill its pipe and stall the encoder.
    stderr = asyncio.ensure_future(_read_all(process.stderr))
    try:
        async with asyncio.timeout(timeout_s):
            await _follow_progress(process.stdout, progress, duration_s)
            tail = await stderr
            await process.wait()
    except BaseException:
        stderr.cancel()
        await _kill(process)
        raise
    _check_exit("ffmpeg", process, tail)
    progress(1.0, "encoded")


async def _read_all(stream: asyncio.StreamReader | None) -> bytes:
    return await stream.read() if stream is not None else b""


def written_fraction(line: str, duration_s: float) -> float | None:
    """The fraction of the output one line of ffmpeg's `-progress` report says is written
    (`out_time_us`, or `out_time_ms`, which ffmpeg also counts in microseconds)."""
    key, _, value = line.strip().partition("=")
    if key not in ("out_time_us", "out_time_ms"):
        return None
    try:
        written = int(value) / 1_000_000
    except ValueError:  # "N/A" before the first frame
        return None
    return min(1.0, max(0.0, written / duration_s))


async def _follow_progress(
    stdout: asyncio.StreamReader | None, progress: Progress, duration_s: float
) -> None:
    """Report each progress block's fraction, below 1: the end is told once ffmpeg exits
    cleanly."""
    assert stdout is not None
    fraction = 0.0
    async for raw in stdout:
        line = raw.decode(errors="replace")
        found = written_fraction(line, duration_s)
        if found is not None:
            fraction = found
        elif line.startswith("progress=") and fraction > 0:
            progress(min(0.99, fraction), "encoding")


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
