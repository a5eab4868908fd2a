"""ffmpeg's own progress report, read while it encodes a real clip."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sogni_intelligence.media.ffmpeg import (
    MEDIA_NICE,
    MediaProcessError,
    ffmpeg,
    probe,
    run_process,
)


async def test_an_encode_reports_increasing_fractions_then_the_end(tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    seen: list[tuple[float, str | None]] = []
    await ffmpeg(
        *("-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=24:duration=6"),
        *("-c:v", "libx264", "-preset", "medium", "-pix_fmt", "yuv420p", str(out)),
        progress=lambda fraction, message=None: seen.append((fraction, message)),
        duration_s=6,
    )
    assert float((await probe(out))["format"]["duration"]) == pytest.approx(6, abs=0.1)
    fractions = [fraction for fraction, _ in seen]
    assert seen[-1] == (1.0, "encoded")
    inside = [f for f in fractions if 0 < f < 1]
    assert len(inside) >= 3, seen
    assert fractions == sorted(fractions)


async def test_a_failing_encode_with_progress_says_why_and_never_ends(tmp_path: Path) -> None:
    seen: list[float] = []
    with pytest.raises(MediaProcessError, match="ffmpeg failed"):
        await ffmpeg(
            *("-i", str(tmp_path / "missing.mp4"), str(tmp_path / "out.mp4")),
            progress=lambda fraction, message=None: seen.append(fraction),
            duration_s=1,
        )
    assert 1.0 not in seen


async def test_cancelling_an_encode_with_progress_kills_it(tmp_path: Path) -> None:
    job = asyncio.ensure_future(
        ffmpeg(
            *("-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=24:duration=60"),
            str(tmp_path / "slow.mp4"),
            progress=lambda fraction, message=None: None,
            duration_s=60,
        )
    )
    target = str(tmp_path / "slow.mp4")
    await asyncio.sleep(0.5)
    assert processes_writing(target), "the encode never started"
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert not processes_writing(target)


def processes_writing(target: str) -> list[Path]:
    """The live processes whose command line names `target`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if target.encode() in cmdline.read_bytes().split(b"\0"):
                found.append(cmdline.parent)
        except OSError:  # ended while we looked
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads nice levels from /proc")
async def test_media_subprocesses_run_below_the_server() -> None:
    own = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[16])
    # The child reports its own nice level (field 19 of its stat).
    out = await run_process("sh", "-c", "cut -d')' -f2 /proc/self/stat | cut -d' ' -f18")
    assert int(out) == own + MEDIA_NICE
