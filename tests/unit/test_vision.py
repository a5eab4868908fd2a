import base64
import io

import pytest
from PIL import Image

from sogni_intelligence.api.chat_completions.vision import ImageLimits, normalise_image
from sogni_intelligence.errors import ServiceError

LIMITS = ImageLimits(max_bytes=2 * 1024 * 1024, max_side=1024)


def _data_uri(fmt: str, size: tuple[int, int], mime: str | None = None) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 90)).save(out, fmt)
    mime = mime or f"image/{fmt.lower()}"
    return f"data:{mime};base64,{base64.b64encode(out.getvalue()).decode()}"


def _decode(uri: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_small_png_and_jpeg_pass_unchanged(fmt: str) -> None:
    uri = _data_uri(fmt, (64, 32))
    assert normalise_image(uri, LIMITS, "p") == uri


@pytest.mark.parametrize("fmt", ["WEBP", "GIF"])
def test_webp_and_gif_become_png(fmt: str) -> None:
    out = normalise_image(_data_uri(fmt, (64, 32)), LIMITS, "p")
    assert out.startswith("data:image/png;base64,")
    assert _decode(out).format == "PNG" and _decode(out).size == (64, 32)


def test_large_image_is_scaled_to_the_long_side_limit() -> None:
    out = _decode(normalise_image(_data_uri("PNG", (2048, 1024)), LIMITS, "p"))
    assert out.size == (1024, 512) and out.format == "PNG"


@pytest.mark.parametrize(
    "uri",
    [
        "https://example.com/cat.png",
        "data:image/png;base64,!!!notbase64",
        "data:image/png;base64," + base64.b64encode(b"definitely not an image").decode(),
        _data_uri("BMP", (8, 8), "image/png"),  # BMP bytes behind a PNG label
        _data_uri("PNG", (8, 8))[:60],  # truncated
    ],
)
def test_bad_images_are_400(uri: str) -> None:
    with pytest.raises(ServiceError) as info:
        normalise_image(uri, LIMITS, "messages.0.content.1.image_url.url")
    assert info.value.status == 400
    assert info.value.param == "messages.0.content.1.image_url.url"


def test_image_over_the_byte_limit_is_400() -> None:
    uri = _data_uri("PNG", (64, 64))
    with pytest.raises(ServiceError, match="larger than"):
        normalise_image(uri, ImageLimits(max_bytes=50, max_side=1024), "p")
