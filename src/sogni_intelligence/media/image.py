"""The default image backend: a deterministic procedural renderer that runs on any CPU.

It is not a diffusion model. It turns the prompt and seed into a composition (palette from
colour and mood words, a layout from scene words, layered translucent shapes, grain), so the
same request always gives the same picture and different prompts give visibly different ones.
Every artifact it makes says so in its metadata. Real models plug in as other backends.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
import re

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

RENDERER_NOTE = "procedural render (deterministic CPU renderer, not a generative model)"

# Words that steer the palette: hue in [0, 1), saturation, value.
_COLOUR_WORDS: dict[str, tuple[float, float, float]] = {
    "red": (0.0, 0.8, 0.85),
    "crimson": (0.97, 0.85, 0.7),
    "orange": (0.07, 0.85, 0.95),
    "gold": (0.12, 0.75, 0.95),
    "golden": (0.12, 0.75, 0.95),
    "yellow": (0.15, 0.8, 0.95),
    "green": (0.33, 0.7, 0.7),
    "forest": (0.3, 0.65, 0.45),
    "jungle": (0.32, 0.8, 0.5),
    "teal": (0.48, 0.7, 0.65),
    "cyan": (0.5, 0.7, 0.9),
    "ocean": (0.55, 0.75, 0.7),
    "sea": (0.55, 0.7, 0.75),
    "blue": (0.62, 0.75, 0.85),
    "sky": (0.58, 0.45, 0.95),
    "night": (0.66, 0.7, 0.25),
    "purple": (0.78, 0.65, 0.7),
    "violet": (0.76, 0.6, 0.8),
    "pink": (0.92, 0.45, 0.95),
    "sunset": (0.04, 0.75, 0.95),
    "desert": (0.09, 0.5, 0.85),
    "snow": (0.6, 0.08, 0.97),
    "winter": (0.6, 0.2, 0.9),
    "autumn": (0.06, 0.8, 0.75),
    "fire": (0.03, 0.9, 0.95),
    "neon": (0.85, 0.9, 1.0),
    "dark": (0.7, 0.4, 0.2),
    "black": (0.0, 0.0, 0.1),
    "white": (0.0, 0.0, 0.97),
    "grey": (0.0, 0.0, 0.55),
    "gray": (0.0, 0.0, 0.55),
    "pastel": (0.9, 0.25, 0.95),
    "mint": (0.42, 0.35, 0.9),
}
_LANDSCAPE_WORDS = {
    "landscape",
    "mountain",
    "mountains",
    "hills",
    "valley",
    "horizon",
    "field",
    "beach",
    "desert",
    "sea",
    "ocean",
    "lake",
    "city",
    "skyline",
    "sunset",
}
_NIGHT_WORDS = {"night", "stars", "starry", "moon", "space", "galaxy", "cosmic"}


def _rng(prompt: str, seed: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}\x00{prompt.strip().lower()}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def _words(prompt: str) -> list[str]:
    return re.findall(r"[a-z]+", prompt.lower())


def _palette(
    words: list[str], rng: np.random.Generator, size: int = 5
) -> list[tuple[int, int, int]]:
    anchors = [_COLOUR_WORDS[w] for w in words if w in _COLOUR_WORDS]
    if not anchors:
        anchors = [(float(rng.random()), 0.55 + 0.3 * float(rng.random()), 0.85)]
    colours = []
    for i in range(size):
        hue, sat, val = anchors[i % len(anchors)]
        hue = (
            hue + float(rng.normal(0, 0.04)) + (0.5 if i == size - 1 and len(anchors) == 1 else 0)
        ) % 1
        sat = float(np.clip(sat + rng.normal(0, 0.1), 0, 1))
        val = float(np.clip(val + rng.normal(0, 0.12), 0.08, 1))
        r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
        colours.append((int(r * 255), int(g * 255), int(b * 255)))
    return colours


def render_procedural(
    prompt: str,
    seed: int,
    width: int,
    height: int,
    *,
    avoid: str | None = None,
    transparent: bool = False,
) -> Image.Image:
    """An RGB image for (prompt, seed) at the requested size; same inputs, same pixels.

    Words of `avoid` (a negative prompt) do not steer the palette or the layout. With
    `transparent` the result is RGBA: the shapes alone, without the background gradient.
    """
    rng = _rng(prompt, seed)
    unwanted = set(_words(avoid or ""))
    words = [word for word in _words(prompt) if word not in unwanted]
    palette = _palette(words, rng)
    top, bottom = np.array(palette[0], float), np.array(palette[1], float)
    if _NIGHT_WORDS & set(words):
        top = top * 0.25
    # Background: a gradient at a seed-chosen angle.
    angle = float(rng.uniform(0, np.pi))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (xs / max(width - 1, 1)) * np.cos(angle) + (ys / max(height - 1, 1)) * np.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    pixels = top[None, None, :] * (1 - t[..., None]) + bottom[None, None, :] * t[..., None]
    image = Image.fromarray(pixels.astype(np.uint8), "RGB")

    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    scale = min(width, height)
    if _LANDSCAPE_WORDS & set(words):
        for band in range(3):  # receding ridges
            base = height * (0.55 + 0.13 * band)
            points = [(0, height)]
            for x in np.linspace(0, width, 9):
                points.append(
                    (float(x), float(base - rng.uniform(0.05, 0.25) * height / (band + 1)))
                )
            points.append((width, height))
            colour = palette[(band + 2) % len(palette)]
            draw.polygon(points, fill=(*colour, 150 + 35 * band))
    if _NIGHT_WORDS & set(words):
        for _ in range(int(rng.integers(60, 140))):
            x, y = float(rng.uniform(0, width)), float(rng.uniform(0, height * 0.6))
            r = float(rng.uniform(0.5, 2.0)) * scale / 512
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 240, 220))
    for _ in range(int(rng.integers(14, 30))):
        colour = palette[int(rng.integers(0, len(palette)))]
        alpha = int(rng.integers(40, 130))
        cx, cy = float(rng.uniform(0, width)), float(rng.uniform(0, height))
        r = float(rng.uniform(0.03, 0.22)) * scale
        if rng.random() < 0.6:
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(*colour, alpha))
        else:
            sides = int(rng.integers(3, 7))
            turn = float(rng.uniform(0, 2 * np.pi))
            points = [
                (
                    cx + r * np.cos(turn + 2 * np.pi * k / sides),
                    cy + r * np.sin(turn + 2 * np.pi * k / sides),
                )
                for k in range(sides)
            ]
            draw.polygon(points, fill=(*colour, alpha))
    layer = layer.filter(ImageFilter.GaussianBlur(radius=max(1.0, scale / 400)))
    grain = rng.normal(0, 6, (height, width, 1)).astype(np.float32)
    if transparent:
        rgba = np.asarray(layer, np.float32).copy()
        rgba[..., :3] = np.clip(rgba[..., :3] + grain, 0, 255)
        return Image.fromarray(rgba.astype(np.uint8), "RGBA")
    image = Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")
    out = np.clip(np.asarray(image, np.float32) + grain, 0, 255).astype(np.uint8)
    return Image.fromarray(out, "RGB")


def blend_with_source(source: Image.Image, render: Image.Image, keep: float) -> Image.Image:
    """img2img: keep `keep` (0–1) of the source's look under the new render."""
    source = ImageOps.fit(source.convert("RGB"), render.size, Image.Resampling.LANCZOS)
    return Image.blend(render, source, float(np.clip(keep, 0.0, 1.0)))


def restyle(source: Image.Image, prompt: str, seed: int, strength: float) -> Image.Image:
    """Recolour a picture towards the prompt's palette, keeping its structure."""
    rng = _rng(prompt, seed)
    palette = _palette(_words(prompt), rng, size=2)
    grey = ImageOps.grayscale(source.convert("RGB"))
    toned = ImageOps.colorize(grey, black=palette[0], white=palette[1]).convert("RGB")
    toned = toned.filter(ImageFilter.EDGE_ENHANCE)
    return Image.blend(source.convert("RGB"), toned, float(np.clip(strength, 0, 1)))


def restore(source: Image.Image, seed: int = 0, thorough: bool = False) -> Image.Image:
    """Clean up a photo: denoise, stretch contrast, sharpen, lift colour.

    The seed varies the sharpening, colour lift and exposure, so variations differ;
    `thorough` denoises harder and sharpens twice (slower, for damaged photos).
    """
    rng = np.random.default_rng(seed)
    image = source.convert("RGB").filter(ImageFilter.MedianFilter(5 if thorough else 3))
    image = ImageOps.autocontrast(image, cutoff=2 if thorough else 1)
    percent = int(rng.integers(60, 101))
    for _ in range(2 if thorough else 1):
        image = image.filter(ImageFilter.UnsharpMask(radius=2, percent=percent, threshold=2))
    image = ImageEnhance.Color(image).enhance(float(rng.uniform(1.08, 1.22)))
    return ImageEnhance.Brightness(image).enhance(float(rng.uniform(0.96, 1.04)))


def change_angle(
    source: Image.Image, degrees: float, tilt: float, zoom: float = 1.0
) -> Image.Image:
    """A new viewpoint by perspective warp: `degrees` (-180..180) turns left/right, past 90 the
    picture is seen from behind (mirrored); `tilt` (-1..1) looks up/down; `zoom` above 1 moves
    closer (centre crop), below 1 farther away (the picture shrinks onto a blurred copy)."""
    image = source.convert("RGB")
    w, h = image.size
    if abs(degrees) > 90:
        image = ImageOps.mirror(image)
        degrees = math.copysign(180 - abs(degrees), degrees)
    image = _zoom(image, zoom)
    dx = w * 0.25 * float(np.clip(degrees / 90, -1, 1))
    dy = h * 0.25 * float(np.clip(tilt, -1, 1))
    # Corners of the source quad that map onto the output rectangle.
    quad = (
        max(dx, 0),
        max(dy, 0) + (abs(dx) * 0.3 if dx < 0 else 0),
        max(dx, 0) * 0.5,
        h - max(-dy, 0),
        w - max(-dx, 0) * 0.5,
        h - max(-dy, 0),
        w - max(-dx, 0),
        max(dy, 0) + (abs(dx) * 0.3 if dx > 0 else 0),
    )
    return image.transform((w, h), Image.Transform.QUAD, quad, Image.Resampling.BICUBIC)


def _zoom(image: Image.Image, zoom: float) -> Image.Image:
    w, h = image.size
    if zoom > 1:
        cw, ch = w / zoom, h / zoom
        box = ((w - cw) / 2, (h - ch) / 2, (w + cw) / 2, (h + ch) / 2)
        return image.resize((w, h), Image.Resampling.LANCZOS, box=box)
    if zoom < 1:
        backdrop = image.filter(ImageFilter.GaussianBlur(radius=max(w, h) / 40))
        small = image.resize(
            (max(1, round(w * zoom)), max(1, round(h * zoom))), Image.Resampling.LANCZOS
        )
        backdrop.paste(small, ((w - small.width) // 2, (h - small.height) // 2))
        return backdrop
    return image


def reshape(image: Image.Image, width: int, height: int) -> Image.Image:
    """The picture at a new size; a new aspect ratio crops it around the centre (no bars)."""
    image = image.convert("RGB")
    if image.size == (width, height):
        return image
    return ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS)


def apply_mask(edited: Image.Image, source: Image.Image, mask: Image.Image) -> Image.Image:
    """An edit limited by an alpha mask: where the mask is opaque the source stays, where it is
    transparent the edit shows (partial alpha mixes them)."""
    alpha = mask.getchannel("A").resize(edited.size, Image.Resampling.BILINEAR)
    kept = reshape(source, *edited.size)
    return Image.composite(kept, edited.convert("RGB"), alpha)


def upscale(source: Image.Image, width: int, height: int) -> Image.Image:
    image = source.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    return image.filter(ImageFilter.UnsharpMask(radius=1.5, percent=60, threshold=2))
