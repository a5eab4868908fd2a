"""The video operations: keyframe clips with camera motion, joins with transitions, splices of
a segment and rescales. Every length is counted in whole frames, which keeps durations exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Literal

from sogni_intelligence.media.progress import Progress
from sogni_intelligence.media.video.encoding import (
    AUDIO_FORMAT,
    FPS,
    SAMPLE_RATE,
    TRANSITIONS,
    encode_graph,
    frames,
    num,
    pick_fps,
    seconds,
)
from sogni_intelligence.media.video.motion import (
    SILENCE,
    Motion,
    Soundtrack,
    soundtrack_filter,
    zoompan_filter,
)
from sogni_intelligence.media.video.probe import (
    VideoFacts,
    audio_chain,
    fit_chain,
    inspect,
)

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
    soundtrack: Soundtrack = SILENCE,
    progress: Progress | None = None,
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
        f"[{i}:v]{zoompan_filter(m, c, width, height, fps)}[k{i}]"
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
    extra, audio = soundtrack_filter(soundtrack, n, length)
    await encode_graph(
        [*inputs, *extra], ";".join([*parts, audio]), out, length, width, height, progress
    )
    return length


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
    progress: Progress | None = None,
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
        extra, audio = soundtrack_filter(soundtrack, len(clips), length)
        parts.append(audio)
    await encode_graph([*inputs, *extra], ";".join(parts), out, length, width, height, progress)
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
    progress: Progress | None = None,
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
    await encode_graph(inputs, ";".join(parts), out, length, width, height, progress)
    return length


async def rescale(
    source: Path,
    out: Path,
    *,
    width: int,
    height: int,
    scaler: str = "lanczos",
    sharpen: float = 0.0,
    progress: Progress | None = None,
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
    await encode_graph(["-i", str(source)], graph, out, length, width, height, progress)
    return length
