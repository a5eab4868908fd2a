"""The rules behind the image tools' arguments: shapes, sizes, dynamic prompts, camera phrases,
LoRA pairing and the upscale limits."""

import pytest
from pydantic import ValidationError

from sogni_intelligence.tools.base import ToolError
from sogni_intelligence.tools.camera_angles import CameraAngle, describe, parse_angle
from sogni_intelligence.tools.dynamic_prompts import expand, variation_prompts
from sogni_intelligence.tools.image_args import (
    Aspect,
    EditImageArgs,
    GenerateImageArgs,
    RestorePhotoArgs,
    parse_aspect,
)
from sogni_intelligence.tools.image_tools import upscaled_size


@pytest.mark.parametrize(
    ("text", "aspect"),
    [
        ("16:9", Aspect(16 / 9)),
        ("4:5", Aspect(0.8)),
        (" 21 : 9 ", Aspect(21 / 9)),
        ("1920x1080", Aspect(1920 / 1080, (1920, 1080))),
        ("3840x2160", Aspect(3840 / 2160, (3840, 2160))),
        ("portrait", Aspect(9 / 16)),
    ],
)
def test_shapes_the_manifest_names_are_read(text: str, aspect: Aspect) -> None:
    assert parse_aspect(text) == aspect


@pytest.mark.parametrize("text", ["wide", "16:0", "10:1", "7680x4320", "100x100", ""])
def test_other_shapes_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_aspect(text)


def _size(base: tuple[int, int] = (1024, 1024), **arguments: object) -> tuple[int, int]:
    return GenerateImageArgs(prompt="x", **arguments).output_size(base)  # type: ignore[arg-type]


def test_generate_sizes() -> None:
    assert _size() == (1024, 1024)
    assert _size(width=1280, height=720) == (1280, 720)
    assert _size(width=1001, height=333.3) == (1000, 336)  # aligned to 8 px
    assert _size(aspectRatio="16:9") == (1024, 576)
    assert _size(aspectRatio="9:16") == (576, 1024)
    assert _size(aspectRatio="1080x1920") == (1080, 1920)
    assert _size(aspectRatio="16:9", width=1920) == (1920, 1080)
    assert _size(aspectRatio="1280x720", height=360) == (640, 360)
    assert _size(width=4096, aspectRatio="4:1") == (4096, 1024)
    assert _size(width=800) == (800, 800)  # one side and no shape: the base's (square)
    assert _size((1200, 600), height=512) == (1024, 512)  # one side: the base's shape


def test_source_tools_scale_reshape_and_keep_small_images_usable() -> None:
    def size(source: tuple[int, int], **arguments: object) -> tuple[tuple[int, int], list[str]]:
        return RestorePhotoArgs(**arguments).output_size(source)  # type: ignore[arg-type]

    assert size((1000, 800)) == ((1000, 800), [])
    assert size((1000, 800), scale=1.5) == ((1504, 1200), [])
    assert size((1000, 800), aspectRatio="1:1") == ((1000, 1000), [])
    assert size((300, 200)) == ((720, 480), [])  # the short edge lifted to 480 px
    assert size((1000, 800), aspectRatio="640x480", scale=2) == (
        (640, 480),
        ["scale: not used, aspectRatio gives exact pixels"],
    )
    (capped, warnings) = size((3000, 2000), scale=4)
    assert capped == (4096, 2728) and "scale" in warnings[0]


def test_lora_strengths_pair_with_loras() -> None:
    EditImageArgs(prompt="x", loras=["a", "b"], loraStrengths=[3, -2])
    EditImageArgs(prompt="x", loras=["a"])
    for bad in (
        {"loras": ["a"], "loraStrengths": [1, 2]},
        {"loraStrengths": [1]},
        {"loras": []},
        {"loras": [""]},
        {"loras": [str(i) for i in range(9)]},
    ):
        with pytest.raises(ValidationError):
            EditImageArgs(prompt="x", **bad)  # type: ignore[arg-type]


def test_gpt_image_options_are_range_checked() -> None:
    GenerateImageArgs(prompt="x", gptImageQuality="max", gptImageOutputCompression=0)
    with pytest.raises(ValidationError):
        GenerateImageArgs(prompt="x", gptImageOutputCompression=101)
    with pytest.raises(ValidationError):
        GenerateImageArgs(prompt="x", gptImageBackground="clear")  # type: ignore[arg-type]


def test_dynamic_prompts_give_each_variation_its_option() -> None:
    prompt = "a cat {in a window|on a shelf|by a fire}, {day|night}"
    assert variation_prompts(prompt, 4) == [
        "a cat in a window, day",
        "a cat on a shelf, night",
        "a cat by a fire, day",
        "a cat in a window, night",
    ]
    assert expand("{a {red|blue} car|a bike}", 1) == "a bike"
    assert expand("{a {red|blue} car|a bike}", 2) == "a red car"
    layout = '{"title": "menu", "items": [{"name": "tea"}]}'
    assert expand(layout, 3) == layout  # braces without choices stay


def test_camera_phrases() -> None:
    angle = parse_angle("front-left quarter view low-angle shot wide shot")
    assert (angle.degrees, angle.tilt, angle.zoom, angle.unknown) == (-45, -0.7, 0.7, "")
    assert parse_angle("front view").degrees == 0  # not the "front-left ..." entry
    assert parse_angle("back view close-up").degrees == 180
    default = parse_angle(None)
    assert (default.degrees, default.tilt, default.zoom) == (45, 0, 1)
    assert parse_angle("from the top, please").unknown == "from the top please"
    half = parse_angle("right side view high-angle shot close-up").scaled(0.5)
    assert (half.degrees, half.tilt, half.zoom) == (45, 0.4, 1.25)


def test_a_camera_angle_reads_back_as_the_nearest_named_view() -> None:
    phrase = "back-left quarter view, low-angle shot, close-up"
    assert describe(parse_angle(phrase)) == phrase
    # -170 degrees is nearer to the back view (180) the short way round than to -135
    assert describe(CameraAngle(-170, 0.5, 0.8)) == "back view, elevated shot, wide shot"


def test_upscale_sizes_and_limits() -> None:
    assert upscaled_size(1024, 768, 2, None) == (2048, 1536)
    assert upscaled_size(6000, 3000, 2, None) == (12000, 6000)
    assert upscaled_size(1000, 500, 4, 3840) == (3840, 1920)  # the target wins over the scale
    with pytest.raises(ToolError) as small:
        upscaled_size(100, 100, 2, None)
    assert "targetLongestEdge=512" in small.value.message
    with pytest.raises(ToolError) as large:
        upscaled_size(5000, 4000, 4, None)
    assert "15360" in large.value.message
    with pytest.raises(ToolError) as narrow:
        upscaled_size(4000, 100, 2, None)
    assert "too narrow" in narrow.value.message
