"""Colours in words: the nearest named colour of an RGB value, and an image's dominant palette."""

from __future__ import annotations

from typing import Any

from PIL import Image

# --------------------------------------------------------------------------------------------
# Colour names.

COLOUR_NAMES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("black", (0, 0, 0)),
    ("dark gray", (64, 64, 64)),
    ("gray", (128, 128, 128)),
    ("light gray", (200, 200, 200)),
    ("white", (255, 255, 255)),
    ("red", (255, 0, 0)),
    ("dark red", (139, 0, 0)),
    ("salmon", (250, 128, 114)),
    ("coral", (255, 127, 80)),
    ("orange", (255, 165, 0)),
    ("gold", (255, 215, 0)),
    ("yellow", (255, 255, 0)),
    ("olive", (128, 128, 0)),
    ("lime", (0, 255, 0)),
    ("green", (0, 128, 0)),
    ("dark green", (0, 100, 0)),
    ("teal", (0, 128, 128)),
    ("turquoise", (64, 224, 208)),
    ("cyan", (0, 255, 255)),
    ("sky blue", (135, 206, 235)),
    ("royal blue", (65, 105, 225)),
    ("blue", (0, 0, 255)),
    ("navy", (0, 0, 128)),
    ("indigo", (75, 0, 130)),
    ("purple", (128, 0, 128)),
    ("violet", (238, 130, 238)),
    ("magenta", (255, 0, 255)),
    ("pink", (255, 192, 203)),
    ("brown", (139, 69, 19)),
    ("tan", (210, 180, 140)),
    ("beige", (245, 245, 220)),
    ("lavender", (230, 230, 250)),
)


def colour_name(rgb: tuple[int, int, int]) -> str:
    """The nearest named colour, by a perceptually weighted RGB distance."""

    def distance(other: tuple[int, int, int]) -> float:
        mean_red = (rgb[0] + other[0]) / 2
        dr, dg, db = rgb[0] - other[0], rgb[1] - other[1], rgb[2] - other[2]
        return (2 + mean_red / 256) * dr * dr + 4 * dg * dg + (2 + (255 - mean_red) / 256) * db * db

    return min(COLOUR_NAMES, key=lambda item: distance(item[1]))[0]


def hex_colour(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def palette(image: Image.Image, colours: int = 5) -> list[dict[str, Any]]:
    """The dominant colours with their share of the pixels, largest first."""
    small = image.convert("RGB")
    small.thumbnail((160, 160), Image.Resampling.NEAREST)  # nearest keeps true colours
    quantized = small.quantize(
        colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    flat = quantized.getpalette() or []
    counts = quantized.getcolors() or []
    total = sum(count for count, _ in counts) or 1
    out = []
    for count, index in sorted(counts, reverse=True):
        rgb = (flat[3 * index], flat[3 * index + 1], flat[3 * index + 2])
        out.append(
            {
                "name": colour_name(rgb),
                "hex": hex_colour(rgb),
                "rgb": list(rgb),
                "share": round(count / total, 3),
            }
        )
    return out
