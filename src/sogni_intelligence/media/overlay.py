"""Text and images burnt into a video: each at an anchor of the frame (a corner, an edge's
centre or the middle), nudged inward by pixel offsets, for a time window.

The frame size (made even), the length and the sound of the source stay as they were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sogni_intelligence.media.text_style import BOLD_FONT_FILE, FONT_FILE, ffmpeg_color, wrap_text
from sogni_intelligence.media.video.encoding import escape, num
from sogni_intelligence.media.video.probe import reencoding

Anchor = Literal[
    "top-left",
    "top-center",
    "top-right",
    "center",
    "bottom-left",
    "bottom-center",
    "bottom-right",
]
Fit = Literal["contain", "cover"]

# Where an anchor sits on each axis: at the start (left/top), the middle, or the end.
_SIDES: dict[str, tuple[str, str]] = {
    "top-left": ("start", "start"),
    "top-center": ("middle", "start"),
    "top-right": ("end", "start"),
    "center": ("middle", "middle"),
    "bottom-left": ("start", "end"),
    "bottom-center": ("middle", "end"),
    "bottom-right": ("end", "end"),
}


def _axis(side: str, room: str, size: str, margin: int, offset: int) -> str:
    """One coordinate: `margin` from the anchored edge, `offset` pixels further inward (toward
    the right/bottom for a centred axis), kept inside the frame."""
    if side == "start":
        at = f"{margin}+({offset})"
    elif side == "end":
        at = f"{room}-{size}-{margin}-({offset})"
    else:
        at = f"({room}-{size})/2+({offset})"
    return f"max(0,min({room}-{size},{at}))"


def _place(anchor: str, margin: int, dx: int, dy: int, *, text: bool) -> str:
    room_w, room_h, w, h = (
        ("w", "h", "text_w", "text_h") if text else ("main_w", "main_h", "overlay_w", "overlay_h")
    )
    across, down = _SIDES[anchor]
    x = _axis(across, room_w, w, margin, dx)
    y = _axis(down, room_h, h, margin, dy)
    return f":x='{x}':y='{y}'"


@dataclass(frozen=True)
class Placement:
    """Where, when and how opaque a layer shows (text and images are placed alike): at `anchor`,
    `offset_x`/`offset_y` pixels inward, from `start` to `end` seconds."""

    start: float
    end: float
    anchor: Anchor
    offset_x: int = 0
    offset_y: int = 0
    opacity: float = 1.0

    def options(self, margin: int, *, text: bool) -> str:
        """The position and enable options of the layer's drawtext or overlay filter."""
        position = _place(self.anchor, margin, self.offset_x, self.offset_y, text=text)
        return f"{position}:enable='between(t,{num(self.start)},{num(self.end)})'"


@dataclass(frozen=True)
class TextLayer:
    """Text at `place`; `size` is the font height as a fraction of the frame height unless
    `font_px` fixes it."""

    text: str
    place: Placement
    size: float = 0.06
    font_px: int | None = None
    color: str = "#FFFFFF"
    outline: str | None = "#000000"
    background: str | None = None
    bold: bool = False


@dataclass(frozen=True)
class ImageLayer:
    """An image at `place`. `contain` scales it to `width_fraction` of the frame width (kept
    whole, never taller than the frame); `cover` fills a box of that fraction of both sides
    (the whole frame at 1.0), cropping what sticks out."""

    path: Path
    place: Placement
    width_fraction: float = 0.15
    fit: Fit = "contain"


def _text_filter(layer: TextLayer, text_path: Path, width: int, height: int, margin: int) -> str:
    font_px = layer.font_px or max(8, round(height * layer.size))
    text_path.write_text(wrap_text(layer.text, font_px, width), encoding="utf-8")
    font = BOLD_FONT_FILE if layer.bold else FONT_FILE
    opacity = layer.place.opacity
    style = f":fontsize={font_px}:fontcolor={ffmpeg_color(layer.color, opacity)}"
    if layer.outline:
        outline = ffmpeg_color(layer.outline, opacity)
        style += f":borderw={max(1, round(font_px / 16))}:bordercolor={outline}"
    pad = 0
    if layer.background:
        pad = max(2, font_px // 4)
        style += f":box=1:boxcolor={ffmpeg_color(layer.background, opacity)}"
        style += f":boxborderw={pad}"
    return (
        f"drawtext=fontfile={escape(str(font))}:textfile={escape(str(text_path))}"
        f":expansion=none:text_align=C{style}{layer.place.options(margin + pad, text=True)}"
    )


def _image_chain(layer: ImageLayer, width: int, height: int) -> str:
    box_w = max(2, round(width * layer.width_fraction))
    if layer.fit == "cover":
        box_h = max(2, round(height * layer.width_fraction))
        size = (
            f"scale={box_w}:{box_h}:force_original_aspect_ratio=increase:flags=lanczos,"
            f"crop={box_w}:{box_h}"
        )
    else:
        size = f"scale={box_w}:{height}:force_original_aspect_ratio=decrease:flags=lanczos"
    return f"{size},format=rgba,colorchannelmixer=aa={num(layer.place.opacity)}"


async def burn_layers(
    source: Path, out: Path, layers: Sequence[TextLayer | ImageLayer], workdir: Path
) -> tuple[float, int, int]:
    """Draw the layers over `source` in order (later ones on top). Returns (duration, width,
    height) of the result."""
    kept = await reencoding(source)
    width, height = kept.width, kept.height
    margin = max(4, round(min(width, height) * 0.04))
    parts = [f"[0:v]{kept.picture_chain()}[l0]"]
    inputs = ["-i", str(source)]
    for i, layer in enumerate(layers):
        if isinstance(layer, TextLayer):
            drawn = _text_filter(layer, workdir / f"overlay-{i}.txt", width, height, margin)
            parts.append(f"[l{i}]{drawn}[l{i + 1}]")
            continue
        index = len(inputs) // 2
        inputs += ["-i", str(layer.path)]
        parts.append(f"[{index}:v]{_image_chain(layer, width, height)}[o{i}]")
        # Positions are kept inside the frame, so a full-frame cover sits flush despite margins.
        place = layer.place.options(margin, text=False)
        parts.append(f"[l{i}][o{i}]overlay=eof_action=repeat{place},format=yuv420p[l{i + 1}]")
    parts.append(f"[l{len(layers)}]null[v]")
    parts.append(kept.sound_chain())
    await kept.encode(inputs, ";".join(parts), out)
    return kept.length, width, height
