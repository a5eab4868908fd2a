"""Checks and normalises `image_url` data URIs before they reach a vision engine."""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from sogni_intelligence.errors import invalid_request

_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg"}
#: Taken too, but re-encoded as PNG (a GIF's first frame): vision engines decode only the above.
_CONVERTED = ("WEBP", "GIF")


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int
    max_side: int


def normalise_image(url: str, limits: ImageLimits, param: str) -> str:
    """A data URI of a PNG or JPEG that decodes, scaled down to the long-side limit (a WebP or
    GIF becomes a PNG)."""
    header, sep, payload = url.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        raise invalid_request(
            "image_url must be a base64 data URI (data:image/png;base64,... or image/jpeg, "
            "image/webp, image/gif)",
            param,
        )
    if len(payload) > limits.max_bytes * 4 // 3 + 4:
        raise invalid_request(f"image is larger than {limits.max_bytes} bytes", param)
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid_request("image data is not valid base64", param) from exc
    if len(raw) > limits.max_bytes:
        raise invalid_request(f"image is larger than {limits.max_bytes} bytes", param)
    try:
        with Image.open(io.BytesIO(raw)) as probe:
            fmt = probe.format
            probe.verify()
        if fmt not in _FORMATS and fmt not in _CONVERTED:
            raise invalid_request(
                f"image format {fmt} is not supported; send PNG, JPEG, WebP or GIF", param
            )
        image = Image.open(io.BytesIO(raw))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise invalid_request("image data is corrupt or not an image", param) from exc
    if max(image.size) <= limits.max_side and fmt in _FORMATS:
        return f"data:{_FORMATS[fmt]};base64,{payload}"
    if fmt in _CONVERTED:
        image, fmt = image.convert("RGBA"), "PNG"
    image.thumbnail((limits.max_side, limits.max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=90)
    else:
        image.save(out, "PNG")
    return f"data:{_FORMATS[fmt]};base64,{base64.b64encode(out.getvalue()).decode()}"
