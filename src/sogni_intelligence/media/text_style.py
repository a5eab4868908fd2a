"""How burnt-in text looks: the fonts, colour strings read the way callers write them, and line
wrapping. Shared by overlays (drawtext) and subtitles (libass)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from PIL import ImageColor

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_FILE = FONT_DIR / "DejaVuSans.ttf"
BOLD_FONT_FILE = FONT_DIR / "DejaVuSans-Bold.ttf"
FONT_NAME = "DejaVu Sans"

RGBA = tuple[int, int, int, float]

_FUNCTION = re.compile(r"^rgba?\(\s*([^)]*)\)$", re.IGNORECASE)


def _alpha(text: str) -> float:
    value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    if not 0 <= value <= 1:
        raise ValueError("alpha must be between 0 and 1")
    return value


def parse_color(value: str) -> RGBA:
    """Red, green, blue (0-255) and alpha (0-1) of a colour written as a CSS name, #RGB,
    #RRGGBB, #RRGGBBAA, 0xRRGGBB, rgb(r,g,b), rgba(r,g,b,a) or ffmpeg's `name@alpha`.

    Raises ValueError for anything else."""
    text = value.strip()
    alpha = 1.0
    if "@" in text:
        text, _, suffix = text.partition("@")
        alpha = _alpha(suffix.strip())
    if text.lower().startswith("0x"):
        text = "#" + text[2:]
    match = _FUNCTION.match(text)
    if match:
        parts = [p.strip() for p in match.group(1).split(",")]
        if len(parts) not in (3, 4):
            raise ValueError(f"{value!r} needs three or four components")
        r, g, b = (int(float(p)) for p in parts[:3])
        if not all(0 <= c <= 255 for c in (r, g, b)):
            raise ValueError(f"{value!r} has a component outside 0-255")
        return r, g, b, (_alpha(parts[3]) if len(parts) == 4 else 1.0) * alpha
    try:
        rgb = ImageColor.getrgb(text)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a colour (a CSS name, #RRGGBB or rgba())") from exc
    if len(rgb) == 4:
        alpha *= rgb[3] / 255
    return rgb[0], rgb[1], rgb[2], alpha


def ffmpeg_color(value: str, opacity: float = 1.0) -> str:
    """The colour as ffmpeg writes it (0xRRGGBB@alpha), its alpha scaled by `opacity`."""
    r, g, b, a = parse_color(value)
    return f"0x{r:02x}{g:02x}{b:02x}@{round(a * opacity, 4)}"


def ass_color(value: str) -> str:
    """The colour as libass reads it: &HAABBGGRR with AA the transparency (00 is opaque)."""
    r, g, b, a = parse_color(value)
    return f"&H{round((1 - a) * 255):02X}{b:02X}{g:02X}{r:02X}"


def wrap_text(text: str, font_px: int, width: int) -> str:
    """Break long lines so the text fits the frame (DejaVu Sans is about 0.55 em per char)."""
    per_line = max(8, int(width * 0.9 / (font_px * 0.58)))
    lines = []
    for line in text.splitlines() or [""]:
        lines += textwrap.wrap(line, per_line) or [""]
    return "\n".join(lines)
