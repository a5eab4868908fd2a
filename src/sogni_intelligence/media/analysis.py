"""Looking at media without a vision model: technical metadata and measured pixel statistics.

Everything here is computed from the file (Pillow, numpy, ffprobe, frames sampled by ffmpeg):
sizes, palettes, brightness, contrast, sharpness, differences between images and the scene cuts
of a video. None of it claims to know what the picture shows; the tools say so in their answers.
When a vision-capable LLM is configured, the tools ask it instead and this module only prepares
the frames it sees.
"""

from __future__ import annotations

import base64
import contextlib
import io
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import ExifTags, Image, TiffImagePlugin

from sogni_intelligence.media.ffmpeg import ffmpeg, probe, summarize

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


# --------------------------------------------------------------------------------------------
# Image statistics.


def _luma(rgb: np.ndarray) -> np.ndarray:
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


def _level(value: float, steps: tuple[tuple[float, str], ...], last: str) -> str:
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
    luma = _luma(rgb)
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
        "brightness_level": _level(
            brightness, ((0.25, "dark"), (0.45, "dim"), (0.65, "medium")), "bright"
        ),
        "contrast": round(contrast, 3),
        "contrast_level": _level(
            contrast, ((0.08, "very low"), (0.18, "low"), (0.28, "moderate")), "high"
        ),
        "sharpness": round(sharpness, 1),
        "sharpness_level": _level(
            sharpness,
            ((20, "very soft or blurred"), (100, "soft"), (500, "moderately sharp")),
            "sharp and detailed",
        ),
        "saturation": round(saturation, 3),
        "colourfulness": _level(
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
    luma_a, luma_b = _luma(pa) / 255, _luma(pb) / 255
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


# --------------------------------------------------------------------------------------------
# Metadata.


def _json_value(value: Any) -> Any:
    if isinstance(value, TiffImagePlugin.IFDRational):
        return None if value.denominator == 0 else round(float(value), 6)
    if isinstance(value, bytes):
        text = value.rstrip(b"\x00")
        if text and all(32 <= ch < 127 for ch in text):
            return text.decode("ascii")[:500]
        return f"<{len(value)} bytes>"
    if isinstance(value, str):
        return value.rstrip("\x00")[:500]
    if isinstance(value, bool | int | float) or value is None:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value
    if isinstance(value, tuple | list):
        return [_json_value(v) for v in value[:64]]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in list(value.items())[:64]}
    return str(value)[:500]


_IFD_POINTERS = {0x8769, 0x8825, 0xA005}
_SKIPPED_TAGS = {0x927C, 0x02BC, 0x8773}  # maker notes, XMP and ICC blobs


def read_exif(image: Image.Image) -> tuple[dict[str, Any], dict[str, Any]]:
    """(EXIF tags by human name, GPS tags by name)."""
    exif = image.getexif()
    tags: dict[str, Any] = {}

    def add(items: Any, names: dict[int, str]) -> None:
        for key, value in items:
            if key in _IFD_POINTERS or key in _SKIPPED_TAGS:
                continue
            tags[names.get(key, f"Tag0x{key:04X}")] = _json_value(value)

    add(exif.items(), ExifTags.TAGS)
    with contextlib.suppress(KeyError, ValueError, OSError):
        add(exif.get_ifd(ExifTags.IFD.Exif).items(), ExifTags.TAGS)
    gps: dict[str, Any] = {}
    with contextlib.suppress(KeyError, ValueError, OSError):
        for key, value in exif.get_ifd(ExifTags.IFD.GPSInfo).items():
            gps[ExifTags.GPSTAGS.get(key, f"Tag0x{key:04X}")] = _json_value(value)
    return tags, gps


def image_metadata(path: Path) -> dict[str, Any]:
    with Image.open(path) as image:
        exif, gps = read_exif(image)
        frames = getattr(image, "n_frames", 1)
        info = {
            k: _json_value(v)
            for k, v in image.info.items()
            if k not in ("exif", "icc_profile", "xmp") and isinstance(v, str | int | float | tuple)
        }
        out: dict[str, Any] = {
            "format": image.format,
            "width": image.width,
            "height": image.height,
            "mode": image.mode,
            "bands": list(image.getbands()),
            "has_alpha": image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info,
            "frames": frames,
            "animated": frames > 1,
            "has_icc_profile": "icc_profile" in image.info,
            "file_size_bytes": path.stat().st_size,
            "exif": exif,
        }
    if gps:
        out["gps"] = gps
    if info:
        out["info"] = info
    return out


async def media_metadata(path: Path) -> dict[str, Any]:
    """ffprobe's facts about a video or audio file, tidied."""
    report = await probe(path)
    out = summarize(report)
    fmt = report.get("format") or {}
    out["container_long_name"] = fmt.get("format_long_name")
    out["file_size_bytes"] = path.stat().st_size
    streams = []
    for stream in report.get("streams") or []:
        row: dict[str, Any] = {
            "index": stream.get("index"),
            "type": stream.get("codec_type"),
            "codec": stream.get("codec_name"),
            "codec_long_name": stream.get("codec_long_name"),
        }
        for key in (
            "profile",
            "width",
            "height",
            "pix_fmt",
            "avg_frame_rate",
            "nb_frames",
            "sample_rate",
            "sample_fmt",
            "channels",
            "channel_layout",
            "bit_rate",
            "duration",
        ):
            if stream.get(key) not in (None, "", "N/A", "0/0"):
                row[key] = stream[key]
        streams.append(row)
    out["streams"] = streams
    tags = fmt.get("tags")
    if tags:
        out["tags"] = {str(k): str(v)[:500] for k, v in tags.items()}
    return {k: v for k, v in out.items() if v is not None}


# --------------------------------------------------------------------------------------------
# Video.

SAMPLE_FPS = 2.0
MAX_SAMPLES = 240
CUT_SCORE = 0.3


def _histogram(frame: np.ndarray) -> np.ndarray:
    bins = (frame // 64).astype(np.int64)  # 4 levels per channel -> 64 bins
    codes = bins[..., 0] * 16 + bins[..., 1] * 4 + bins[..., 2]
    hist = np.bincount(codes.ravel(), minlength=64).astype(np.float64)
    return hist / max(1.0, hist.sum())


def _frame_change(a: np.ndarray, b: np.ndarray) -> float:
    """0..1: half pixel difference, half colour-histogram difference."""
    pixel = float(np.abs(a - b).mean() / 255)
    colour = float(np.abs(_histogram(a) - _histogram(b)).sum() / 2)
    return 0.5 * pixel + 0.5 * colour


async def sample_frames(path: Path, workdir: Path, duration: float | None) -> tuple[float, list]:
    """Small frames at an even rate (2 per second, fewer for long videos)."""
    rate = SAMPLE_FPS
    if duration and duration * rate > MAX_SAMPLES:
        rate = MAX_SAMPLES / duration
    await ffmpeg(
        "-i",
        str(path),
        "-an",
        "-vf",
        f"fps={rate:.5f},scale=160:-2:flags=area",
        "-frames:v",
        str(MAX_SAMPLES),
        str(workdir / "frame_%05d.png"),
    )
    return rate, sorted(workdir.glob("frame_*.png"))


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64)


def scenes_from_frames(frames: list[Path], rate: float, duration: float) -> dict[str, Any]:
    """Cuts where consecutive samples change a lot; per-scene times, palette and motion."""
    arrays = [_load(p) for p in frames]
    changes = [_frame_change(arrays[i - 1], arrays[i]) for i in range(1, len(arrays))]
    step = 1.0 / rate
    cuts = [i for i, change in enumerate(changes, start=1) if change > CUT_SCORE]
    bounds = [0, *cuts, len(arrays)]
    scenes = []
    for number, (first, last) in enumerate(itertools.pairwise(bounds), start=1):
        start = 0.0 if first == 0 else (first - 0.5) * step
        end = duration if last == len(arrays) else (last - 0.5) * step
        middle = arrays[(first + last - 1) // 2].astype(np.uint8)
        inner = changes[first : last - 1]
        motion = float(np.mean(inner)) if inner else 0.0
        brightness = float(np.mean([_luma(a).mean() for a in arrays[first:last]]) / 255)
        scenes.append(
            {
                "scene": number,
                "start_seconds": round(start, 2),
                "end_seconds": round(min(end, duration), 2),
                "palette": palette(Image.fromarray(middle), colours=3),
                "brightness": round(brightness, 3),
                "motion": round(motion, 3),
                "motion_level": _level(motion, ((0.02, "still"), (0.08, "some")), "a lot of"),
            }
        )
    return {
        "sampled_frames": len(arrays),
        "sample_rate_fps": round(rate, 3),
        "cut_times_seconds": [round((i - 0.5) * step, 2) for i in cuts],
        "scene_count": len(scenes),
        "scenes": scenes,
        "mean_change": round(float(np.mean(changes)), 3) if changes else 0.0,
    }


async def video_stats(path: Path, workdir: Path) -> dict[str, Any]:
    info = summarize(await probe(path))
    duration = info.get("duration_seconds") or 0.0
    rate, frames = await sample_frames(path, workdir, duration)
    if not frames:
        raise ValueError("no frames could be decoded from the video")
    if not duration:
        duration = len(frames) / rate
    stats: dict[str, Any] = {
        "duration_seconds": round(duration, 3),
        "fps": info.get("fps"),
        "width": info.get("width"),
        "height": info.get("height"),
        "video_codec": info.get("video_codec"),
        "has_audio": bool(info.get("audio_codec")),
    }
    if info.get("audio_codec"):
        stats["audio"] = {
            "codec": info.get("audio_codec"),
            "sample_rate": info.get("sample_rate"),
            "channels": info.get("channels"),
        }
    stats.update(scenes_from_frames(frames, rate, duration))
    return stats


async def frames_for_vision(path: Path, workdir: Path, duration: float, count: int) -> list:
    """(time, frame path) pairs spread over the video, at a size a vision model can read."""
    picked = []
    for i in range(count):
        at = duration * (i + 0.5) / count
        out = workdir / f"vision_{i:02d}.jpg"
        await ffmpeg(
            "-ss",
            f"{at:.3f}",
            "-i",
            str(path),
            "-frames:v",
            "1",
            "-vf",
            "scale='min(768,iw)':-2",
            str(out),
        )
        if out.exists():
            picked.append((round(at, 2), out))
    return picked


def data_uri(path: Path, max_edge: int = 1024) -> str:
    """A JPEG data URI of an image, scaled down for a vision model."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    rgb.thumbnail((max_edge, max_edge), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


# --------------------------------------------------------------------------------------------
# Words.

COMPUTED_NOTE = (
    "This is a computed description from measured pixel statistics; no vision model looked at "
    "the {what}, so it cannot say what {shows}."
)
NO_OCR = "Text recognition (OCR) is not available on this server, so no text was read."
NO_OBJECTS = "Object recognition is not available on this server, so no objects were identified."


def _palette_words(colours: list[dict[str, Any]], limit: int = 3) -> str:
    return ", ".join(
        f"{c['name']} ({c['hex']}, {round(100 * c['share'])}%)" for c in colours[:limit]
    )


def describe_image(stats: dict[str, Any], analysis_type: str, detailed: bool) -> str:
    parts = [COMPUTED_NOTE.format(what="image", shows="it shows")]
    if analysis_type in ("ocr", "document"):
        parts.append(NO_OCR)
    elif analysis_type == "objects":
        parts.append(NO_OBJECTS)
    parts.append(
        f"The image is {stats['width']}×{stats['height']} pixels ({stats['orientation']}, "
        f"{stats['aspect_ratio']}). Dominant colours: "
        f"{_palette_words(stats['palette'], 5 if detailed else 3)}."
    )
    parts.append(
        f"It is {stats['brightness_level']} (mean brightness {stats['brightness']:.2f}) with "
        f"{stats['contrast_level']} contrast, looks {stats['sharpness_level']} and is "
        f"{stats['colourfulness']}."
    )
    if detailed:
        parts.append(
            f"Measured: contrast {stats['contrast']:.3f}, Laplacian variance "
            f"{stats['sharpness']}, mean saturation {stats['saturation']:.2f}, "
            f"{stats['megapixels']} megapixels."
        )
    if "transparent_fraction" in stats:
        parts.append(f"{round(100 * stats['transparent_fraction'])}% of it is transparent.")
    return " ".join(parts)


def describe_comparison(result: dict[str, Any]) -> str:
    shift = result["dominant_colour_shift"]
    sizes = result["sizes"]
    parts = [COMPUTED_NOTE.format(what="images", shows="they show")]
    size_words = (
        "Both images are the same size"
        if result["same_size"]
        else f"The first is {sizes['first'][0]}×{sizes['first'][1]} and the second "
        f"{sizes['second'][0]}×{sizes['second'][1]}"
    )
    parts.append(
        f"{size_words}. They are {round(100 * result['similarity'])}% similar pixel for pixel "
        f"(mean absolute difference {result['mean_absolute_difference']:.3f}); "
        f"{round(100 * result['changed_pixel_fraction'])}% of the pixels changed noticeably."
    )
    if shift["from"] != shift["to"]:
        parts.append(f"The dominant colour shifts from {shift['from']} to {shift['to']}.")
    else:
        parts.append(f"The dominant colour stays {shift['from']}.")
    if result["most_changed_regions"]:
        parts.append("Most change is in the " + ", ".join(result["most_changed_regions"]) + ".")
    bright = result["brightness"]
    if abs(bright["first"] - bright["second"]) > 0.05:
        darker = "darker" if bright["second"] < bright["first"] else "brighter"
        parts.append(f"The second image is {darker} overall.")
    return " ".join(parts)


def describe_video(stats: dict[str, Any], analysis_type: str, detailed: bool) -> str:
    parts = [COMPUTED_NOTE.format(what="video", shows="it shows")]
    if analysis_type == "ocr":
        parts.append(NO_OCR)
    elif analysis_type == "action":
        parts.append(
            "Actions cannot be recognised without a vision model; the motion level of each "
            "scene is measured instead."
        )
    fps = f", {stats['fps']:.3g} fps" if stats.get("fps") else ""
    audio = "with an audio track" if stats.get("has_audio") else "without audio"
    parts.append(
        f"The video lasts {stats['duration_seconds']:.1f} s at {stats['width']}×"
        f"{stats['height']}{fps}, {audio}."
    )
    scenes = stats["scenes"]
    count = len(scenes)
    cut_word = "scene" if count == 1 else "scenes"
    parts.append(f"Frame differences show {count} {cut_word}:")
    shown = scenes if detailed or count <= 8 else scenes[:8]
    for scene in shown:
        colours = _palette_words(scene["palette"], 2 if not detailed else 3)
        parts.append(
            f"{scene['start_seconds']:.1f}–{scene['end_seconds']:.1f} s mostly {colours}, "
            f"{scene['motion_level']} motion;"
        )
    if len(shown) < count:
        parts.append(f"and {count - len(shown)} more.")
    else:
        parts[-1] = parts[-1].rstrip(";") + "."
    return " ".join(parts)
