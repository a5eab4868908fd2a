"""Camera motion over still keyframes (push, pull, pans, seeded) and the soundtrack a keyframe
clip carries (a tone bed or silence).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

from sogni_intelligence.media.video.encoding import (
    AUDIO_FORMAT,
    SAMPLE_RATE,
    frame_rate_text,
    num,
)

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


def zoompan_filter(motion: Motion, count: int, width: int, height: int, fps: Fraction) -> str:
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
        f"zoompan=z='{zoom}':x='{x}':y='{y}':d={count}:s={width}x{height}:fps={frame_rate_text(fps)}"
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


SILENCE = Soundtrack()


def _tone(f: float) -> str:
    """A quiet chord (root, fifth, octave), each voice swelling slowly."""
    return (
        f"0.05*sin(2*PI*{num(f)}*t)*(0.6+0.4*sin(2*PI*0.13*t))"
        f"+0.035*sin(2*PI*{num(f * 1.5)}*t+0.7)*(0.6+0.4*sin(2*PI*0.07*t+1))"
        f"+0.015*sin(2*PI*{num(f * 2)}*t)"
    )


def soundtrack_filter(
    track: Soundtrack, input_index: int, duration: float
) -> tuple[list[str], str]:
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
