"""How every video output is encoded (H.264 yuv420p at a constant frame rate, AAC stereo,
fast-start MP4), with the frame arithmetic and filter-graph text the operations share.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from sogni_intelligence.media.ffmpeg import ffmpeg
from sogni_intelligence.media.progress import Progress

FPS = Fraction(24)
SAMPLE_RATE = 48000

VIDEO_CODEC = ("-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p")
AUDIO_CODEC = ("-c:a", "aac", "-b:a", "128k", "-ar", str(SAMPLE_RATE), "-ac", "2")
CONTAINER = ("-movflags", "+faststart", "-f", "mp4")
AUDIO_FORMAT = f"aresample={SAMPLE_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo"

TRANSITIONS = ("fade", "dissolve", "wipeleft", "wiperight", "slideup", "slidedown")


# ---------------------------------------------------------------------------------------------
# Small helpers


def even(value: float, minimum: int = 16) -> int:
    """The nearest even integer, at least `minimum` (H.264 with yuv420p needs even sides)."""
    return max(minimum, round(value / 2) * 2)


def pick_fps(fps: float | None) -> Fraction:
    """A sane constant frame rate for an output made from a source with rate `fps`."""
    if fps is None or not 8 <= fps <= 60:
        return FPS
    return Fraction(fps).limit_denominator(1001)


def frames(seconds: float, fps: Fraction) -> int:
    return max(1, round(seconds * fps))


def seconds(count: int, fps: Fraction) -> float:
    return float(count / fps)


def escape(value: str) -> str:
    """Escape a filter option value for a filtergraph: first for the option parser, then for
    the graph parser (see ffmpeg-filters, "Notes on filtergraph escaping")."""
    for char in "\\':":
        value = value.replace(char, "\\" + char)
    out = []
    for char in value:
        if char in "\\'[],;":
            out.append("\\")
        out.append(char)
    return "".join(out)


def num(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


def frame_rate_text(fps: Fraction) -> str:
    return f"{fps.numerator}/{fps.denominator}"


def encode_args(out: Path, duration: float) -> list[str]:
    return [
        "-map",
        "[v]",
        "-map",
        "[a]",
        *VIDEO_CODEC,
        *AUDIO_CODEC,
        "-t",
        num(duration),
        *CONTAINER,
        str(out),
    ]


def ffmpeg_timeout(duration: float, width: int, height: int) -> float:
    """A generous limit for one ffmpeg run that makes `duration` seconds at this size."""
    return 120 + duration * 8 * max(1.0, width * height / (1280 * 720))


async def encode_graph(
    inputs: Sequence[str],
    graph: str,
    out: Path,
    length: float,
    width: int,
    height: int,
    progress: Progress | None = None,
) -> None:
    """Run a filter graph that ends in [v] and [a] into `out`: every output gets the same
    codecs, the exact length and a time limit that grows with its length and size; the
    encoder's progress goes to `progress`."""
    await ffmpeg(
        *inputs,
        "-filter_complex",
        graph,
        *encode_args(out, length),
        timeout_s=ffmpeg_timeout(length, width, height),
        progress=progress,
        duration_s=length,
    )
