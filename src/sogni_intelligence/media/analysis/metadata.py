"""Technical metadata of a file: EXIF of an image (as JSON-safe values) and what ffprobe says
about any media.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, TiffImagePlugin

from sogni_intelligence.media.ffmpeg import probe, summarize

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
