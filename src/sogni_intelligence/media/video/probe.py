"""What a source video is (size, length, frame rate, whether it has sound), whether it must be
re-encoded before joining, single frames and covers taken from it, and its frames decoded for a
video model to redraw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from PIL import Image

from sogni_intelligence.media.ffmpeg import MediaProcessError, ffmpeg, probe
from sogni_intelligence.media.progress import Progress
from sogni_intelligence.media.video.encoding import (
    AUDIO_FORMAT,
    SAMPLE_RATE,
    encode_graph,
    even,
    frame_rate_text,
    frames,
    num,
    pick_fps,
    seconds,
)

# ---------------------------------------------------------------------------------------------
# Inspecting sources


@dataclass(frozen=True)
class VideoFacts:
    width: int
    height: int
    duration: float
    fps: float | None
    has_audio: bool


async def inspect(path: Path) -> VideoFacts:
    """Display size (rotation applied), duration, frame rate and audio presence of a video."""
    info = await probe(path)
    streams = info.get("streams") or []
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    if video is None or not video.get("width"):
        raise MediaProcessError(f"{path.name} has no video stream")
    width, height = int(video["width"]), int(video["height"])
    rotation = 0
    for side in video.get("side_data_list") or []:
        if "rotation" in side:
            rotation = int(side["rotation"])
    if abs(rotation) % 180 == 90:
        width, height = height, width
    raw = video.get("duration") or (info.get("format") or {}).get("duration")
    duration = float(raw) if raw else 0.0
    if duration <= 0:
        raise MediaProcessError(f"{path.name} has no duration")
    fps = None
    for key in ("avg_frame_rate", "r_frame_rate"):
        num, _, den = str(video.get(key) or "").partition("/")
        try:
            fps = float(num) / float(den or 1)
        except (ValueError, ZeroDivisionError):
            continue
        if fps > 0:
            break
        fps = None
    has_audio = any(s.get("codec_type") == "audio" for s in streams)
    return VideoFacts(width, height, duration, fps, has_audio)


@dataclass(frozen=True)
class Reencoding:
    """A source re-encoded whole, as overlays and subtitles do: its size made even, a constant
    frame rate, and its length in whole frames, so that only the pictures change."""

    facts: VideoFacts
    width: int
    height: int
    fps: Fraction
    count: int

    @property
    def length(self) -> float:
        return seconds(self.count, self.fps)

    def picture_chain(self) -> str:
        """The source's pictures (input 0) at the kept size, rate and length."""
        return fit_chain(self.width, self.height, self.fps, self.count)

    def sound_chain(self) -> str:
        """The source's sound (or silence) at the kept length, labelled [a]."""
        return audio_chain(0, self.facts, self.length, "a")

    async def encode(
        self, inputs: Sequence[str], graph: str, out: Path, progress: Progress | None = None
    ) -> None:
        await encode_graph(inputs, graph, out, self.length, self.width, self.height, progress)


async def reencoding(source: Path) -> Reencoding:
    """How `source` is re-encoded whole (see `Reencoding`)."""
    facts = await inspect(source)
    fps = pick_fps(facts.fps)
    return Reencoding(
        facts, even(facts.width), even(facts.height), fps, frames(facts.duration, fps)
    )


async def extract_frame(source: Path, out: Path, *, last: bool = True, at: float = 0.0) -> Path:
    """Write one frame of `source` as PNG: the last one, or the one at `at` seconds."""
    if last:
        # Decode the final stretch and keep overwriting the image: what remains is the last frame.
        args = ["-sseof", "-0.6", "-i", str(source), "-an", "-update", "1"]
    else:
        args = ["-ss", num(at), "-i", str(source), "-an", "-frames:v", "1"]
    await ffmpeg(*args, "-c:v", "png", "-f", "image2", str(out), timeout_s=120)
    if not out.exists() and last:
        await ffmpeg(
            "-i", str(source), "-an", "-update", "1", "-c:v", "png", "-f", "image2", str(out)
        )
    if not out.exists():
        raise MediaProcessError(f"no frame could be read from {source.name}")
    return out


async def decode_frames(
    source: Path, out: Path, width: int, height: int, fps: Fraction, count: int
) -> Path:
    """Write `count` frames of `source` as raw RGB24 bytes: scaled to cover width x height and
    centre-cropped to it, at `fps`, the last frame held when the source is shorter."""
    chain = (
        f"scale={width}:{height}:force_original_aspect_ratio=increase:flags=lanczos,"
        f"crop={width}:{height},setsar=1,fps={frame_rate_text(fps)},"
        f"tpad=stop_mode=clone:stop={count},trim=end_frame={count}"
    )
    args = ["-i", str(source), "-an", "-vf", chain, "-f", "rawvideo", "-pix_fmt", "rgb24"]
    await ffmpeg(*args, str(out), timeout_s=600)
    if out.stat().st_size != count * width * height * 3:
        raise MediaProcessError(f"{source.name} did not decode to {count} frames")
    return out


def cover(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale and centre-crop `image` so it fills width x height exactly."""
    image = image.convert("RGB")
    scale = max(width / image.width, height / image.height)
    size = (
        max(width, math.ceil(image.width * scale)),
        max(height, math.ceil(image.height * scale)),
    )
    image = image.resize(size, Image.Resampling.LANCZOS)
    left, top = (size[0] - width) // 2, (size[1] - height) // 2
    return image.crop((left, top, left + width, top + height))


def fit_chain(width: int, height: int, fps: Fraction, count: int, scaler: str = "lanczos") -> str:
    """Letterbox a video stream into width x height at `fps`, exactly `count` frames long."""
    return (
        f"setpts=PTS-STARTPTS,scale={width}:{height}:force_original_aspect_ratio=decrease"
        f":flags={scaler},pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,"
        f"fps={frame_rate_text(fps)},format=yuv420p,tpad=stop_mode=clone:stop={count},"
        f"trim=end_frame={count},setpts=PTS-STARTPTS"
    )


def audio_chain(index: int, facts: VideoFacts, length: float, label: str) -> str:
    """The audio of input `index` (or silence) padded/trimmed to `length` seconds."""
    end = num(length)
    if facts.has_audio:
        return f"[{index}:a]{AUDIO_FORMAT},asetpts=PTS-STARTPTS,apad,atrim=end={end}[{label}]"
    return f"anullsrc=r={SAMPLE_RATE}:cl=stereo,atrim=end={end}[{label}]"
