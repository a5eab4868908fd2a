"""Video building blocks on top of ffmpeg: keyframe clips with camera motion, joins with
transitions, splices and rescales (burnt-in overlays and subtitles build on these in
`media/overlay.py` and `media/subtitles.py`).

Nothing here knows about tools or indices; callers pass file paths and sizes. Every output is
an MP4 with H.264 video (yuv420p, even dimensions, constant frame rate) and an AAC stereo track
(silence when there is nothing to hear), so any two outputs can be joined without special cases.
Every length is counted in whole frames, which keeps durations exact.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

from PIL import Image

from sogni_intelligence.media.ffmpeg import MediaProcessError, ffmpeg, probe

# Subtitle documents live in media/srt.py; workflow plans (runtime/plans.py) import them here.
from sogni_intelligence.media.srt import Cue as Cue
from sogni_intelligence.media.srt import parse_srt as parse_srt
from sogni_intelligence.media.srt import write_srt as write_srt

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


def _rate(fps: Fraction) -> str:
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
    inputs: Sequence[str], graph: str, out: Path, length: float, width: int, height: int
) -> None:
    """Run a filter graph that ends in [v] and [a] into `out`: every output gets the same
    codecs, the exact length and a time limit that grows with its length and size."""
    await ffmpeg(
        *inputs,
        "-filter_complex",
        graph,
        *encode_args(out, length),
        timeout_s=ffmpeg_timeout(length, width, height),
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

    async def encode(self, inputs: Sequence[str], graph: str, out: Path) -> None:
        await encode_graph(inputs, graph, out, self.length, self.width, self.height)


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
        return f"({num(x)}+({num(y - x)})*{ease})"

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
        f"0.05*sin(2*PI*{num(f)}*t)*(0.6+0.4*sin(2*PI*0.13*t))"
        f"+0.035*sin(2*PI*{num(f * 1.5)}*t+0.7)*(0.6+0.4*sin(2*PI*0.07*t+1))"
        f"+0.015*sin(2*PI*{num(f * 2)}*t)"
    )


def _soundtrack(track: Soundtrack, input_index: int, duration: float) -> tuple[list[str], str]:
    """Extra inputs and a filter chain ending in [a] that lasts exactly `duration` seconds."""
    end = num(duration)
    if track.kind == "file":
        assert track.path is not None
        chain = f"[{input_index}:a]{AUDIO_FORMAT},asetpts=PTS-STARTPTS,apad,atrim=end={end}[a]"
        return ["-i", str(track.path)], chain
    if track.kind == "ambient":
        left, right = _tone(track.pitch_hz), _tone(track.pitch_hz * 1.004)
        fade = min(0.6, duration / 4)
        chain = (
            f"aevalsrc=exprs='{left}|{right}':s={SAMPLE_RATE}:d={end},"
            f"afade=t=in:d={num(fade)},afade=t=out:st={num(duration - fade)}:d={num(fade)},"
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
            f"[{label}][k{i}]xfade=transition=fade:duration={num(seconds(fade, fps))}"
            f":offset={num(offset)}[{nxt}]"
        )
        label, elapsed = nxt, elapsed - fade + lengths[i]
    if n == 1:
        parts.append("[k0]null[v]")
    length = seconds(total, fps)
    inputs: list[str] = []
    for path in keyframes:
        inputs += ["-i", str(path)]
    extra, audio = _soundtrack(soundtrack, n, length)
    await encode_graph([*inputs, *extra], ";".join([*parts, audio]), out, length, width, height)
    return length


def fit_chain(width: int, height: int, fps: Fraction, count: int, scaler: str = "lanczos") -> str:
    """Letterbox a video stream into width x height at `fps`, exactly `count` frames long."""
    return (
        f"setpts=PTS-STARTPTS,scale={width}:{height}:force_original_aspect_ratio=decrease"
        f":flags={scaler},pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,"
        f"fps={_rate(fps)},format=yuv420p,tpad=stop_mode=clone:stop={count},"
        f"trim=end_frame={count},setpts=PTS-STARTPTS"
    )


def audio_chain(index: int, facts: VideoFacts, length: float, label: str) -> str:
    """The audio of input `index` (or silence) padded/trimmed to `length` seconds."""
    end = num(length)
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
    parts = [f"[{i}:v]{fit_chain(width, height, fps, c)}[v{i}]" for i, c in enumerate(counts)]
    if soundtrack is None:
        parts += [
            audio_chain(i, f, seconds(c, fps), f"a{i}")
            for i, (f, c) in enumerate(zip(facts, counts, strict=True))
        ]
    if transition:
        vlabel, alabel, elapsed = "v0", "a0", counts[0]
        for i in range(1, len(clips)):
            last = i == len(clips) - 1
            vnext, anext = ("v", "a") if last else (f"vx{i}", f"ax{i}")
            parts.append(
                f"[{vlabel}][v{i}]xfade=transition={transition}"
                f":duration={num(seconds(fade, fps))}"
                f":offset={num(seconds(elapsed - fade, fps))}[{vnext}]"
            )
            if soundtrack is None:
                parts.append(
                    f"[{alabel}][a{i}]acrossfade=d={num(seconds(fade, fps))}:c1=tri:c2=tri[{anext}]"
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
    await encode_graph([*inputs, *extra], ";".join(parts), out, length, width, height)
    return length, seconds(fade, fps)


def _audio_pieces(
    index: int, facts: VideoFacts, pieces: Sequence[tuple[float, float, float, str]]
) -> list[str]:
    """Audio of input `index` cut into pieces (from, to, length, label): the stretch from..to,
    padded with silence or cut to `length` seconds; silence for an empty stretch or when the
    input has no audio."""
    heard = [p for p in pieces if facts.has_audio and p[1] > p[0]]
    parts = [
        f"anullsrc=r={SAMPLE_RATE}:cl=stereo,atrim=end={num(piece[2])}[{piece[3]}]"
        for piece in pieces
        if piece not in heard
    ]
    if not heard:
        return parts
    feeds = [f"[in{index}_a{k}]" for k in range(len(heard))]
    parts.append(
        f"[{index}:a]{AUDIO_FORMAT},asetpts=PTS-STARTPTS,asplit={len(heard)}{''.join(feeds)}"
    )
    for feed, (begin, until, length, label) in zip(feeds, heard, strict=True):
        parts.append(
            f"{feed}atrim=start={num(begin)}:end={num(until)},asetpts=PTS-STARTPTS,"
            f"apad,atrim=end={num(length)}[{label}]"
        )
    return parts


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
    insert_from: float = 0.0,
    insert_to: float | None = None,
    audio: Literal["source", "insert"] = "source",
) -> float:
    """Play `source` up to `start`, then `insert` from `insert_from` to `insert_to` (its end
    when None) at its own length, then `source` from `end` on; `start == end` inserts without
    removing anything.

    Over the inserted piece, `audio="source"` keeps the source's own sound of start..end (cut
    or padded with silence to the piece's length) and `audio="insert"` plays the piece's sound
    (silence when it has none). Returns the duration."""
    facts, added = await inspect(source), await inspect(insert)
    total = frames(facts.duration, fps)
    first = min(max(0, round(start * fps)), total)
    stop = min(max(first, round(end * fps)), total)
    until = added.duration if insert_to is None else min(insert_to, added.duration)
    if until - insert_from < 0.5 / float(fps):
        raise ValueError("the inserted stretch is empty")
    middle = frames(until - insert_from, fps)
    # (name, first source frame, end source frame, output frames); "mid" covers the window.
    spans = (
        ("head", 0, first, first),
        ("mid", first, stop, middle),
        ("tail", stop, total, total - stop),
    )
    pieces = [span for span in spans if span[3] > 0]
    kept = [name for name, *_ in pieces if name != "mid"]
    parts = [f"[0:v]{fit_chain(width, height, fps, total)}[base]"] if kept else []
    if len(kept) == 2:
        parts.append("[base]split=2[head_v][tail_v]")
    elif kept:
        parts.append(f"[base]null[{kept[0]}_v]")
    if first > 0:
        parts.append(f"[head_v]trim=end_frame={first},setpts=PTS-STARTPTS[head]")
    if stop < total:
        parts.append(f"[tail_v]trim=start_frame={stop},setpts=PTS-STARTPTS[tail]")
    cut = f"trim=start={num(insert_from)}," if insert_from > 0 else ""
    parts.append(f"[1:v]{cut}{fit_chain(width, height, fps, middle)}[mid]")
    parts += _audio_pieces(
        0,
        facts,
        [
            (seconds(a, fps), seconds(b, fps), seconds(count, fps), f"{name}_a")
            for name, a, b, count in pieces
            if name != "mid" or audio == "source"
        ],
    )
    if audio == "insert":
        parts += _audio_pieces(1, added, [(insert_from, until, seconds(middle, fps), "mid_a")])
    streams = "".join(f"[{name}][{name}_a]" for name, *_ in pieces)
    parts.append(f"{streams}concat=n={len(pieces)}:v=1:a=1[v][a]")
    length = seconds(sum(count for *_, count in pieces), fps)
    inputs = ["-i", str(source), "-i", str(insert)]
    await encode_graph(inputs, ";".join(parts), out, length, width, height)
    return length


async def rescale(
    source: Path,
    out: Path,
    *,
    width: int,
    height: int,
    scaler: str = "lanczos",
    sharpen: float = 0.0,
) -> float:
    """Re-encode `source` at width x height with an ffmpeg `scaler`, then an unsharp mask of
    strength `sharpen` (0 is none); the length and the sound stay. Returns the length."""
    facts = await inspect(source)
    fps = pick_fps(facts.fps)
    count = frames(facts.duration, fps)
    length = seconds(count, fps)
    chain = fit_chain(width, height, fps, count, scaler)
    if sharpen > 0:
        # Edges grow as wide as the enlargement, so the mask's window grows with it (odd, 5-13).
        factor = max(width / facts.width, height / facts.height)
        size = min(13, max(5, 2 * round(factor * 0.75) + 1))
        chain += f",unsharp={size}:{size}:{num(sharpen)}:{size}:{size}:0"
    graph = f"[0:v]{chain}[v];{audio_chain(0, facts, length, 'a')}"
    await encode_graph(["-i", str(source)], graph, out, length, width, height)
    return length
