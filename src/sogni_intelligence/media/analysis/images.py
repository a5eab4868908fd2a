"""Measured statistics of a picture (size, aspect, brightness, contrast, saturation,
sharpness, palette) and the differences between two pictures, region by region.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sogni_intelligence.media.analysis.colours import palette

# --------------------------------------------------------------------------------------------
# Image statistics.


def luma_of(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _laplacian_variance(gray: np.ndarray) -> float:
    if gray.shape[0] < 3 or gray.shape[1] < 3:
        return 0.0
    centre = gray[1:-1, 1:-1]
    lap = gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:] - 4 * centre
    return float(lap.var())


def _ratio(width: int, height: int) -> str:
    divisor = math.gcd(width, height) or 1
    w, h = width // divisor, height // divisor
    if w > 50 or h > 50:
        return f"{width / height:.2f}:1"
    return f"{w}:{h}"


def level_word(value: float, steps: tuple[tuple[float, str], ...], last: str) -> str:
    for limit, word in steps:
        if value < limit:
            return word
    return last


def image_stats(path: Path) -> dict[str, Any]:
    """Measured facts about an image file."""
    with Image.open(path) as image:
        image.load()
        width, height = image.size
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        rgba = image.convert("RGBA")
    work = rgba.copy()
    work.thumbnail((1024, 1024), Image.Resampling.LANCZOS)
    pixels = np.asarray(work, dtype=np.float64)
    rgb = pixels[..., :3]
    luma = luma_of(rgb)
    brightness = float(luma.mean() / 255)
    contrast = float(luma.std() / 255)
    sharpness = _laplacian_variance(luma)
    hsv = np.asarray(work.convert("RGB").convert("HSV"), dtype=np.float64)
    saturation = float(hsv[..., 1].mean() / 255)
    stats: dict[str, Any] = {
        "width": width,
        "height": height,
        "orientation": "square"
        if width == height
        else ("landscape" if width > height else "portrait"),
        "aspect_ratio": _ratio(width, height),
        "megapixels": round(width * height / 1e6, 3),
        "palette": palette(rgba.convert("RGB")),
        "brightness": round(brightness, 3),
        "brightness_level": level_word(
            brightness, ((0.25, "dark"), (0.45, "dim"), (0.65, "medium")), "bright"
        ),
        "contrast": round(contrast, 3),
        "contrast_level": level_word(
            contrast, ((0.08, "very low"), (0.18, "low"), (0.28, "moderate")), "high"
        ),
        "sharpness": round(sharpness, 1),
        "sharpness_level": level_word(
            sharpness,
            ((20, "very soft or blurred"), (100, "soft"), (500, "moderately sharp")),
            "sharp and detailed",
        ),
        "saturation": round(saturation, 3),
        "colourfulness": level_word(
            saturation, ((0.1, "nearly monochrome"), (0.3, "muted")), "colourful"
        ),
    }
    if has_alpha:
        stats["transparent_fraction"] = round(float((pixels[..., 3] < 8).mean()), 3)
    return stats


_REGIONS = (
    ("top-left", "top", "top-right"),
    ("left", "centre", "right"),
    ("bottom-left", "bottom", "bottom-right"),
)


def compare_images(first: Path, second: Path) -> dict[str, Any]:
    """Pixel differences between two images (the second is scaled to the first's size)."""
    with Image.open(first) as a_image, Image.open(second) as b_image:
        a = a_image.convert("RGB")
        b = b_image.convert("RGB")
    size_a, size_b = a.size, b.size
    a.thumbnail((256, 256), Image.Resampling.LANCZOS)
    b = b.resize(a.size, Image.Resampling.LANCZOS)
    pa = np.asarray(a, dtype=np.float64)
    pb = np.asarray(b, dtype=np.float64)
    diff = np.abs(pa - pb)
    per_pixel = diff.max(axis=2)
    mad = float(diff.mean())
    regions = []
    rows, cols = per_pixel.shape
    for r in range(3):
        for c in range(3):
            block = diff[r * rows // 3 : (r + 1) * rows // 3, c * cols // 3 : (c + 1) * cols // 3]
            if block.size:
                regions.append((float(block.mean()), _REGIONS[r][c]))
    regions.sort(reverse=True)
    pal_a, pal_b = palette(a), palette(b)
    dom_a, dom_b = pal_a[0], pal_b[0]
    shift = math.dist(dom_a["rgb"], dom_b["rgb"])
    luma_a, luma_b = luma_of(pa) / 255, luma_of(pb) / 255
    return {
        "sizes": {"first": list(size_a), "second": list(size_b)},
        "same_size": size_a == size_b,
        "mean_absolute_difference": round(mad / 255, 4),
        "similarity": round(1 - mad / 255, 4),
        "changed_pixel_fraction": round(float((per_pixel > 40).mean()), 4),
        "brightness": {
            "first": round(float(luma_a.mean()), 3),
            "second": round(float(luma_b.mean()), 3),
        },
        "contrast": {
            "first": round(float(luma_a.std()), 3),
            "second": round(float(luma_b.std()), 3),
        },
        "palette": {"first": pal_a, "second": pal_b},
        "dominant_colour_shift": {
            "from": f"{dom_a['name']} {dom_a['hex']}",
            "to": f"{dom_b['name']} {dom_b['hex']}",
            "rgb_distance": round(shift, 1),
        },
        "most_changed_regions": [name for value, name in regions[:3] if value > 8],
    }
