"""Video building blocks on top of ffmpeg: keyframe clips with camera motion, joins with
transitions, splices, text/image overlays, burnt-in subtitles and rescales.

Nothing here knows about tools or indices; callers pass file paths and sizes. Every output is
an MP4 with H.264 video (yuv420p, even dimensions, constant frame rate) and an AAC stereo track
(silence when there is nothing to hear), so any two outputs can be joined without special cases.
Every length is counted in whole frames, which keeps durations exact.
"""

from __future__ import annotations

import math
import random
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

from PIL import Image, ImageColor

from sogni_intelligence.media.ffmpeg import MediaProcessError, ffmpeg, probe

FPS = Fraction(24)
FONT_FILE = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
FONT_NAME = "DejaVu Sans"
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


def _num(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


def _rate(fps: Fraction) -> str:
    return f"{fps.numerator}/{fps.denominator}"


def _encode(out: Path, duration: float) -> list[str]:
    return [
        "-map",
        "[v]",
        "-map",
        "[a]",
        *VIDEO_CODEC,
        *AUDIO_CODEC,
        "-t",
        _num(duration),
        *CONTAINER,
        str(out),
    ]


def _timeout(duration: float, width: int, height: int) -> float:
    """A generous limit for one ffmpeg run that makes `duration` seconds at this size."""
    return 120 + duration * 8 * max(1.0, width * height / (1280 * 720))


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


async def extract_frame(source: Path, out: Path, *, last: bool = True, at: float = 0.0) -> Path:
    """Write one frame of `source` as PNG: the last one, or the one at `at` seconds."""
    if last:
        # Decode the final stretch and keep overwriting the image: what remains is the last frame.
        args = ["-sseof", "-0.6", "-i", str(source), "-an", "-update", "1"]
    else:
        args = ["-ss", _num(at), "-i", str(source), "-an", "-frames:v", "1"]
    await ffmpeg(*args, "-c:v", "png", "-f", "image2", str(out), timeout_s=120)
    if not out.exists() and last:
        await ffmpeg(
            "-i", str(source), "-an", "-update", "1", "-c:v", "png", "-f", "image2", str(out)
        )
    if not out.exists():
        raise MediaProcessError(f"no frame could be read from {source.name}")
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


# ---------------------------------------------------------------------------------------------
# Camera motion over still keyframes


@dataclass(frozen=True)
class View:
    """What the camera sees: magnification (>= 1) and the centre in 0..1 image coordinates."""

    zoom: float
    cx: float = 0.5
    cy: float = 0.5


FULL = View(1.0)


@dataclass(frozen=True)
class Motion:
    """A move from `start` to `end`; an arc goes to `end` and comes back to `start`."""

    name: str
    start: View
    end: View
    arc: bool = False


def _centre(rng: random.Random, zoom: float, spread: float = 0.8) -> tuple[float, float]:
    half = (1 - 1 / zoom) / 2 * spread
    return 0.5 + rng.uniform(-half, half), 0.5 + rng.uniform(-half, half)


MOVES = ("push in", "pull out", "pan left", "pan right", "pan up", "pan down")


def pick_motion(
    rng: random.Random,
    *,
    start_full: bool = False,
    end_full: bool = False,
    prefer: str | None = None,
) -> Motion:
    """A Ken Burns move. `start_full`/`end_full` pin the first/last frame to the whole image;
    `prefer` (one of MOVES) is honoured when the pins allow it."""
    zoom = rng.uniform(1.15, 1.3)
    target = View(zoom, *_centre(rng, zoom))
    if start_full and end_full:
        return Motion("push in and back", FULL, target, arc=True)
    if start_full:
        return Motion("push in", FULL, target)
    if end_full:
        return Motion("pull out", target, FULL)
    kind = prefer if prefer in MOVES else rng.choice(MOVES)
    if kind == "push in":
        return Motion(kind, View(1.0), target)
    if kind == "pull out":
        return Motion(kind, target, View(1.0))
    zoom = rng.uniform(1.15, 1.25)
    reach = (1 - 1 / zoom) / 2 * 0.9
    offset = rng.uniform(-reach / 3, reach / 3)
    if kind in ("pan left", "pan right"):
        sign = 1 if kind == "pan right" else -1
        return Motion(
            kind, View(zoom, 0.5 - sign * reach, 0.5 + offset), View(zoom, 0.5 + sign * reach, 0.5)
        )
    sign = 1 if kind == "pan down" else -1
    return Motion(
        kind, View(zoom, 0.5 + offset, 0.5 - sign * reach), View(zoom, 0.5, 0.5 + sign * reach)
    )


def _zoompan(motion: Motion, count: int, width: int, height: int, fps: Fraction) -> str:
    """A zoompan filter that plays `motion` over `count` output frames of one input image."""
    p = f"(on/{max(count - 1, 1)})"
    ease = f"(0.5-0.5*cos(2*PI*{p}))" if motion.arc else f"({p}*{p}*(3-2*{p}))"
    a, b = motion.start, motion.end

    def lerp(x: float, y: float) -> str:
        return f"({_num(x)}+({_num(y - x)})*{ease})"

    zoom = lerp(a.zoom, b.zoom)
    x = f"max(0,min(iw-iw/zoom,{lerp(a.cx, b.cx)}*iw-iw/zoom/2))"
    y = f"max(0,min(ih-ih/zoom,{lerp(a.cy, b.cy)}*ih-ih/zoom/2))"
    return (
        f"zoompan=z='{zoom}':x='{x}':y='{y}':d={count}:s={width}x{height}:fps={_rate(fps)}"
        ",setsar=1,format=yuv420p"
    )


# ---------------------------------------------------------------------------------------------
# Soundtracks


@dataclass(frozen=True)
class Soundtrack:
    """The audio of a made clip: silence, a soft generated ambient tone, or a file."""

    kind: Literal["silent", "ambient", "file"] = "silent"
    path: Path | None = None
    pitch_hz: float = 220.0

    @staticmethod
    def ambient_for(seed: int) -> Soundtrack:
        # A low note between A2 and A3, picked by the seed, so variations differ a little.
        return Soundtrack("ambient", pitch_hz=110.0 * 2 ** ((seed % 12) / 12) * 1.5)


def _tone(f: float) -> str:
    """A quiet chord (root, fifth, octave), each voice swelling slowly."""
    return (
        f"0.05*sin(2*PI*{_num(f)}*t)*(0.6+0.4*sin(2*PI*0.13*t))"
        f"+0.035*sin(2*PI*{_num(f * 1.5)}*t+0.7)*(0.6+0.4*sin(2*PI*0.07*t+1))"
        f"+0.015*sin(2*PI*{_num(f * 2)}*t)"
    )


def _soundtrack(track: Soundtrack, input_index: int, duration: float) -> tuple[list[str], str]:
    """Extra inputs and a filter chain ending in [a] that lasts exactly `duration` seconds."""
    end = _num(duration)
    if track.kind == "file":
        assert track.path is not None
        chain = f"[{input_index}:a]{AUDIO_FORMAT},asetpts=PTS-STARTPTS,apad,atrim=end={end}[a]"
        return ["-i", str(track.path)], chain
    if track.kind == "ambient":
        left, right = _tone(track.pitch_hz), _tone(track.pitch_hz * 1.004)
        fade = min(0.6, duration / 4)
        chain = (
            f"aevalsrc=exprs='{left}|{right}':s={SAMPLE_RATE}:d={end},"
            f"afade=t=in:d={_num(fade)},afade=t=out:st={_num(duration - fade)}:d={_num(fade)},"
            f"{AUDIO_FORMAT},atrim=end={end}[a]"
        )
        return [], chain
    return [], f"anullsrc=r={SAMPLE_RATE}:cl=stereo,atrim=end={end}[a]"


# ---------------------------------------------------------------------------------------------
# Operations


async def keyframe_clip(
    keyframes: Sequence[Path],
    motions: Sequence[Motion],
    out: Path,
    *,
    width: int,
    height: int,
    duration: float,
    fps: Fraction = FPS,
    crossfade: float = 0.8,
    soundtrack: Soundtrack = Soundtrack(),
) -> float:
    """Animate still images: each gets its camera move, neighbours dissolve into each other.

    The keyframe images should have the output's aspect ratio (ideally larger than the output,
    so the moves stay sharp). Returns the clip's duration in seconds (whole frames).
    """
    if not keyframes or len(keyframes) != len(motions):
        raise ValueError("one motion per keyframe is needed")
    n = len(keyframes)
    total = frames(duration, fps)
    fade = min(round(crossfade * fps), total // (2 * n)) if n > 1 else 0
    # Segment lengths in frames: the overlaps are counted twice, so add them back.
    span = total + (n - 1) * fade
    lengths = [span // n + (1 if i < span % n else 0) for i in range(n)]
    parts = [
        f"[{i}:v]{_zoompan(m, c, width, height, fps)}[k{i}]"
        for i, (m, c) in enumerate(zip(motions, lengths, strict=True))
    ]
    label, elapsed = "k0", lengths[0]
    for i in range(1, n):
        offset = seconds(elapsed - fade, fps)
        nxt = "v" if i == n - 1 else f"x{i}"
        parts.append(
            f"[{label}][k{i}]xfade=transition=fade:duration={_num(seconds(fade, fps))}"
            f":offset={_num(offset)}[{nxt}]"
        )
        label, elapsed = nxt, elapsed - fade + lengths[i]
    if n == 1:
        parts.append("[k0]null[v]")
    length = seconds(total, fps)
    inputs: list[str] = []
    for path in keyframes:
        inputs += ["-i", str(path)]
    extra, audio = _soundtrack(soundtrack, n, length)
    graph = ";".join([*parts, audio])
    await ffmpeg(
        *inputs,
        *extra,
        "-filter_complex",
        graph,
        *_encode(out, length),
        timeout_s=_timeout(length, width, height),
    )
    return length


def _fit(width: int, height: int, fps: Fraction, count: int) -> str:
    """Letterbox a video stream into width x height at `fps`, exactly `count` frames long."""
    return (
        f"setpts=PTS-STARTPTS,scale={width}:{height}:force_original_aspect_ratio=decrease"
        f":flags=lanczos,pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,"
        f"fps={_rate(fps)},format=yuv420p,tpad=stop_mode=clone:stop={count},"
        f"trim=end_frame={count},setpts=PTS-STARTPTS"
    )


def _audio_of(index: int, facts: VideoFacts, length: float, label: str) -> str:
    """The audio of input `index` (or silence) padded/trimmed to `length` seconds."""
    end = _num(length)
    if facts.has_audio:
        return f"[{index}:a]{AUDIO_FORMAT},asetpts=PTS-STARTPTS,apad,atrim=end={end}[{label}]"
    return f"anullsrc=r={SAMPLE_RATE}:cl=stereo,atrim=end={end}[{label}]"


async def join(
    clips: Sequence[Path],
    out: Path,
    *,
    width: int,
    height: int,
    fps: Fraction = FPS,
    transition: str | None = None,
    transition_s: float = 0.5,
    soundtrack: Soundtrack | None = None,
) -> tuple[float, float]:
    """Play clips one after another at one size (letterboxed), cut or with an xfade transition.

    The clips' own audio follows them (crossfaded with the pictures) unless `soundtrack` replaces
    it for the whole length. Returns (duration, transition seconds actually used).
    """
    if len(clips) < 2:
        raise ValueError("join needs at least two clips")
    if transition is not None and transition not in TRANSITIONS:
        raise ValueError(f"unknown transition {transition}")
    facts = [await inspect(path) for path in clips]
    counts = [frames(f.duration, fps) for f in facts]
    fade = 0
    if transition:
        fade = max(1, min(round(transition_s * fps), min(counts) // 2))
    total = sum(counts) - (len(clips) - 1) * fade
    length = seconds(total, fps)
    parts = [f"[{i}:v]{_fit(width, height, fps, c)}[v{i}]" for i, c in enumerate(counts)]
    if soundtrack is None:
        parts += [
            _audio_of(i, f, seconds(c, fps), f"a{i}")
            for i, (f, c) in enumerate(zip(facts, counts, strict=True))
        ]
    if transition:
        vlabel, alabel, elapsed = "v0", "a0", counts[0]
        for i in range(1, len(clips)):
            last = i == len(clips) - 1
            vnext, anext = ("v", "a") if last else (f"vx{i}", f"ax{i}")
            parts.append(
                f"[{vlabel}][v{i}]xfade=transition={transition}"
                f":duration={_num(seconds(fade, fps))}"
                f":offset={_num(seconds(elapsed - fade, fps))}[{vnext}]"
            )
            if soundtrack is None:
                parts.append(
                    f"[{alabel}][a{i}]acrossfade=d={_num(seconds(fade, fps))}:c1=tri:c2=tri"
                    f"[{anext}]"
                )
            vlabel, alabel, elapsed = vnext, anext, elapsed - fade + counts[i]
    elif soundtrack is None:
        streams = "".join(f"[v{i}][a{i}]" for i in range(len(clips)))
        parts.append(f"{streams}concat=n={len(clips)}:v=1:a=1[v][a]")
    else:
        streams = "".join(f"[v{i}]" for i in range(len(clips)))
        parts.append(f"{streams}concat=n={len(clips)}:v=1:a=0[v]")
    inputs: list[str] = []
    for path in clips:
        inputs += ["-i", str(path)]
    extra: list[str] = []
    if soundtrack is not None:
        extra, audio = _soundtrack(soundtrack, len(clips), length)
        parts.append(audio)
    await ffmpeg(
        *inputs,
        *extra,
        "-filter_complex",
        ";".join(parts),
        *_encode(out, length),
        timeout_s=_timeout(length, width, height),
    )
    return length, seconds(fade, fps)


async def splice(
    source: Path,
    insert: Path,
    out: Path,
    *,
    start: float,
    end: float,
    width: int,
    height: int,
    fps: Fraction = FPS,
) -> float:
    """Replace the pictures of `source` between `start` and `end` seconds with `insert`.

    The total length and the source's audio stay as they were. Returns the duration."""
    facts = await inspect(source)
    total = frames(facts.duration, fps)
    first = min(max(0, round(start * fps)), total - 1)
    stop = min(max(first + 1, round(end * fps)), total)
    keep = [name for name, wanted in (("head", first > 0), ("tail", stop < total)) if wanted]
    parts = [f"[0:v]{_fit(width, height, fps, total)}[base]"] if keep else []
    if len(keep) == 2:
        parts.append("[base]split=2[b0][b1]")
    feeds = {name: ("[base]" if len(keep) == 1 else f"[b{i}]") for i, name in enumerate(keep)}
    if "head" in feeds:
        parts.append(f"{feeds['head']}trim=end_frame={first},setpts=PTS-STARTPTS[head]")
    if "tail" in feeds:
        parts.append(f"{feeds['tail']}trim=start_frame={stop},setpts=PTS-STARTPTS[tail]")
    chain = [f"[{name}]" for name in ("head", "mid", "tail") if name == "mid" or name in feeds]
    parts.append(f"[1:v]{_fit(width, height, fps, stop - first)}[mid]")
    parts.append(f"{''.join(chain)}concat=n={len(chain)}:v=1:a=0[v]")
    length = seconds(total, fps)
    parts.append(_audio_of(0, facts, length, "a"))
    await ffmpeg(
        "-i",
        str(source),
        "-i",
        str(insert),
        "-filter_complex",
        ";".join(parts),
        *_encode(out, length),
        timeout_s=_timeout(length, width, height),
    )
    return length


async def rescale(source: Path, out: Path, *, width: int, height: int) -> float:
    """Re-encode `source` at width x height (Lanczos); the length stays. Returns it."""
    facts = await inspect(source)
    fps = pick_fps(facts.fps)
    count = frames(facts.duration, fps)
    length = seconds(count, fps)
    graph = f"[0:v]{_fit(width, height, fps, count)}[v];{_audio_of(0, facts, length, 'a')}"
    await ffmpeg(
        "-i",
        str(source),
        "-filter_complex",
        graph,
        *_encode(out, length),
        timeout_s=_timeout(length, width, height),
    )
    return length


# ---------------------------------------------------------------------------------------------
# Burnt-in text and images

_PLACES: dict[str, tuple[str, str]] = {
    "top-left": ("{m}", "{m}"),
    "top": ("({W}-{w})/2", "{m}"),
    "top-right": ("{W}-{w}-{m}", "{m}"),
    "center": ("({W}-{w})/2", "({H}-{h})/2"),
    "bottom-left": ("{m}", "{H}-{h}-{m}"),
    "bottom": ("({W}-{w})/2", "{H}-{h}-{m}"),
    "bottom-right": ("{W}-{w}-{m}", "{H}-{h}-{m}"),
}


def _place(position: str, margin: int, *, text: bool) -> tuple[str, str]:
    names = (
        {"W": "w", "H": "h", "w": "text_w", "h": "text_h"}
        if text
        else {"W": "main_w", "H": "main_h", "w": "overlay_w", "h": "overlay_h"}
    )
    x, y = _PLACES[position]
    return x.format(m=margin, **names), y.format(m=margin, **names)


def _enable(start: float | None, end: float | None) -> str:
    if start is None and end is None:
        return ""
    if end is None:
        return f":enable='gte(t,{_num(start or 0)})'"
    return f":enable='between(t,{_num(start or 0)},{_num(end)})'"


@dataclass(frozen=True)
class TextLayer:
    text: str
    position: str = "bottom"
    start: float | None = None
    end: float | None = None
    opacity: float = 1.0
    font_px: int | None = None
    color: str = "white"


@dataclass(frozen=True)
class ImageLayer:
    path: Path
    position: str = "top-right"
    start: float | None = None
    end: float | None = None
    opacity: float = 1.0
    width_fraction: float = 0.22


def _hex(color: str) -> str:
    r, g, b = ImageColor.getrgb(color)[:3]
    return f"0x{r:02x}{g:02x}{b:02x}"


def wrap_text(text: str, font_px: int, width: int) -> str:
    """Break long lines so the text fits the frame (DejaVu Sans is about 0.55 em per char)."""
    per_line = max(8, int(width * 0.9 / (font_px * 0.58)))
    lines = []
    for line in text.splitlines() or [""]:
        lines += textwrap.wrap(line, per_line) or [""]
    return "\n".join(lines)


async def burn_layers(
    source: Path, out: Path, layers: Sequence[TextLayer | ImageLayer], workdir: Path
) -> tuple[float, int, int]:
    """Draw text and images over `source`, each in a corner/edge/centre for a time window.

    Size (made even) and length stay. Returns (duration, width, height)."""
    facts = await inspect(source)
    width, height = even(facts.width), even(facts.height)
    fps = pick_fps(facts.fps)
    count = frames(facts.duration, fps)
    length = seconds(count, fps)
    margin = max(4, round(min(width, height) * 0.04))
    parts = [f"[0:v]{_fit(width, height, fps, count)}[l0]"]
    inputs = ["-i", str(source)]
    label = "l0"
    for i, layer in enumerate(layers):
        nxt = f"l{i + 1}"
        if isinstance(layer, TextLayer):
            font_px = layer.font_px or max(12, round(height / 16))
            text_path = workdir / f"overlay-{i}.txt"
            text_path.write_text(wrap_text(layer.text, font_px, width), encoding="utf-8")
            x, y = _place(layer.position, margin, text=True)
            alpha = _num(layer.opacity)
            parts.append(
                f"[{label}]drawtext=fontfile={escape(str(FONT_FILE))}"
                f":textfile={escape(str(text_path))}:expansion=none:text_align=C"
                f":fontsize={font_px}:fontcolor={_hex(layer.color)}@{alpha}"
                f":borderw={max(1, font_px // 14)}:bordercolor=black@{_num(layer.opacity * 0.8)}"
                f":box=1:boxcolor=black@{_num(layer.opacity * 0.35)}"
                f":boxborderw={max(2, font_px // 4)}"
                f":x='{x}':y='{y}'{_enable(layer.start, layer.end)}[{nxt}]"
            )
        else:
            index = len(inputs) // 2
            inputs += ["-i", str(layer.path)]
            logo_w = even(width * layer.width_fraction, 2)
            x, y = _place(layer.position, margin, text=False)
            parts.append(
                f"[{index}:v]scale={logo_w}:-2:flags=lanczos,format=rgba,"
                f"colorchannelmixer=aa={_num(layer.opacity)}[o{i}]"
            )
            parts.append(
                f"[{label}][o{i}]overlay=x='{x}':y='{y}':eof_action=repeat"
                f"{_enable(layer.start, layer.end)},format=yuv420p[{nxt}]"
            )
        label = nxt
    parts.append(f"[{label}]null[v]")
    parts.append(_audio_of(0, facts, length, "a"))
    await ffmpeg(
        *inputs,
        "-filter_complex",
        ";".join(parts),
        *_encode(out, length),
        timeout_s=_timeout(length, width, height),
    )
    return length, width, height


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


_SRT_TIME = re.compile(
    r"(\d+):(\d{1,2}):(\d{1,2})(?:[,.](\d{1,3}))?\s*-->\s*(\d+):(\d{1,2}):(\d{1,2})(?:[,.](\d{1,3}))?"
)


def parse_srt(text: str) -> list[Cue]:
    """The cues of an SRT document; raises ValueError when it holds none."""
    cues = []
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n").strip())
    for block in blocks:
        lines = block.strip("\n").split("\n")
        for i, line in enumerate(lines):
            match = _SRT_TIME.search(line)
            if match is None:
                continue
            g = match.groups()
            start = (
                int(g[0]) * 3600
                + int(g[1]) * 60
                + int(g[2])
                + int((g[3] or "0").ljust(3, "0")) / 1000
            )
            end = (
                int(g[4]) * 3600
                + int(g[5]) * 60
                + int(g[6])
                + int((g[7] or "0").ljust(3, "0")) / 1000
            )
            body = "\n".join(lines[i + 1 :]).strip()
            if body and end > start:
                cues.append(Cue(start, end, body))
            break
    if not cues:
        raise ValueError("the SRT text holds no cue (expected 'HH:MM:SS,mmm --> HH:MM:SS,mmm')")
    return cues


def _srt_time(value: float) -> str:
    ms = round(value * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def plain_cue_text(text: str) -> str:
    """Cue text shown literally: neutralise the subtitle renderer's override codes."""
    text = text.replace("\\", "\\\\").replace("{", "\\{").replace("}", "\\}")
    return re.sub(r"\n\s*\n+", "\n", text.strip())


def write_srt(cues: Sequence[Cue]) -> str:
    blocks = [
        f"{i}\n{_srt_time(c.start)} --> {_srt_time(c.end)}\n{c.text}\n"
        for i, c in enumerate(sorted(cues, key=lambda c: c.start), start=1)
    ]
    return "\n".join(blocks)


def _ass_colour(color: str) -> str:
    r, g, b = ImageColor.getrgb(color)[:3]
    return f"&H00{b:02X}{g:02X}{r:02X}"


async def burn_subtitles(
    source: Path,
    out: Path,
    cues: Sequence[Cue],
    workdir: Path,
    *,
    font_px: int | None = None,
    color: str = "white",
    position: Literal["bottom", "top"] = "bottom",
) -> tuple[float, int, int]:
    """Render cues (SRT-style text: <i>, <b> and {\\an8}-style codes work) into the pictures.

    Returns (duration, width, height)."""
    facts = await inspect(source)
    width, height = even(facts.width), even(facts.height)
    fps = pick_fps(facts.fps)
    count = frames(facts.duration, fps)
    length = seconds(count, fps)
    srt_path = workdir / "cues.srt"
    if position == "top":
        # A per-cue alignment tag: libass reads a forced Alignment in the legacy SSA numbering
        # for converted SRT, but the tag always uses the keypad layout (8 = top centre).
        cues = [Cue(c.start, c.end, "{\\an8}" + c.text) for c in cues]
    srt_path.write_text(write_srt(cues), encoding="utf-8")
    # SRT is laid out on a 288-line canvas that libass scales to the video height.
    scale = 288 / height
    size = (font_px or max(12, round(height / 18))) * scale
    style = ",".join(
        [
            f"FontName={FONT_NAME}",
            f"FontSize={_num(round(size, 2))}",
            f"PrimaryColour={_ass_colour(color)}",
            "OutlineColour=&H00000000",
            "BackColour=&H80000000",
            "BorderStyle=1",
            f"Outline={_num(round(max(1.0, size / 12), 2))}",
            "Shadow=0",
            f"MarginV={round(height * 0.05 * scale)}",
        ]
    )
    subtitles = (
        f"subtitles=filename={escape(str(srt_path))}:fontsdir={escape(str(FONT_FILE.parent))}"
        f":charenc=UTF-8:force_style={escape(style)}"
    )
    graph = (
        f"[0:v]{_fit(width, height, fps, count)},{subtitles},format=yuv420p[v];"
        f"{_audio_of(0, facts, length, 'a')}"
    )
    await ffmpeg(
        "-i",
        str(source),
        "-filter_complex",
        graph,
        *_encode(out, length),
        timeout_s=_timeout(length, width, height),
    )
    return length, width, height
