"""Video tool arguments without media: model selectors, numeric ranges against the hosted
manifest, colour strings, subtitle documents and overlay time windows."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
from pydantic import ValidationError

from sogni_intelligence.media.srt import Cue, parse_srt
from sogni_intelligence.media.text_style import ass_color, ffmpeg_color, parse_color
from sogni_intelligence.tools.base import ToolError
from sogni_intelligence.tools.catalog import CATALOG
from sogni_intelligence.tools.keyframes import KEYFRAME_VIDEO, video_backend
from sogni_intelligence.tools.subtitle_tools import AddSubtitlesArgs
from sogni_intelligence.tools.video_edit_tools import ReplaceSegmentArgs
from sogni_intelligence.tools.video_overlay_tools import Overlay

VIDEO_TOOLS = (
    "generate_video",
    "animate_photo",
    "upscale_video",
    "extend_video",
    "stitch_video",
    "replace_video_segment",
    "overlay_video",
    "add_subtitles",
)


def _manifest() -> dict[str, Any]:
    text = (resources.files("sogni_client") / "data" / "hosted_tools.json").read_text("utf-8")
    tools = {t["function"]["name"]: t["function"]["parameters"] for t in json.loads(text)["tools"]}
    return {name: tools[name] for name in VIDEO_TOOLS}


MANIFEST = _manifest()


@pytest.mark.parametrize("name", ["generate_video", "animate_photo", "extend_video"])
def test_every_manifest_video_model_runs_on_the_keyframe_backend(name: str) -> None:
    models = MANIFEST[name]["properties"]["videoModel"]["enum"]
    assert models and all(video_backend(model) == KEYFRAME_VIDEO for model in models)


def test_unknown_video_models_are_refused() -> None:
    with pytest.raises(ToolError) as caught:
        video_backend("no-such-video-model")
    assert caught.value.error_type == "PARAMETER_INVALID"


def _ranges(schema: dict[str, Any], path: str = "") -> list[tuple[str, Any, Any]]:
    """(path, minimum, maximum) of every bounded number or array length in a manifest schema."""
    found = []
    if "minimum" in schema or "maximum" in schema:
        found.append((path, schema.get("minimum"), schema.get("maximum")))
    for name, sub in schema.get("properties", {}).items():
        found += _ranges(sub, f"{path}.{name}" if path else name)
    if "items" in schema:
        found += _ranges(schema["items"], f"{path}[]")
    return found


def _value(path: str, value: Any) -> dict[str, Any]:
    """Arguments holding `value` at `path` (a.b[].c), with what the path needs around it."""
    head, _, rest = path.partition(".")
    if head.endswith("[]"):
        inner = _value(rest, value) if rest else value
        return {head[:-2]: [inner]}
    return {head: _value(rest, value) if rest else value}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = [{**out[key][0], **value[0]}]
        else:
            out[key] = value
    return out


BASE: dict[str, dict[str, Any]] = {
    "generate_video": {"prompt": "p"},
    "animate_photo": {"prompt": "p"},
    "upscale_video": {},
    "extend_video": {},
    "stitch_video": {"videoIndices": [0, 1]},
    "replace_video_segment": {"startSeconds": 0, "endSeconds": 10},
    "overlay_video": {"overlays": [{"kind": "image", "position": "center"}]},
    "add_subtitles": {"cues": [{"startSeconds": 0, "endSeconds": 40, "text": "a"}]},
}


@pytest.mark.parametrize("name", VIDEO_TOOLS)
def test_the_ends_of_every_manifest_range_are_accepted(name: str) -> None:
    model = CATALOG[name].args
    checked = 0
    for path, low, high in _ranges(MANIFEST[name]):
        for bound in (low, high):
            if bound is None:
                continue
            arguments = _merge(BASE[name], _value(path, bound))
            try:
                model.model_validate(arguments)
            except ValidationError as exc:
                pytest.fail(f"{name}.{path}={bound}: {exc}")
            checked += 1
    assert checked


@pytest.mark.parametrize(
    ("value", "rgba"),
    [
        ("#FFFFFF", (255, 255, 255, 1.0)),
        ("white", (255, 255, 255, 1.0)),
        ("#00000080", (0, 0, 0, 128 / 255)),
        ("rgba(0,0,0,0.5)", (0, 0, 0, 0.5)),
        ("rgba(10, 20, 30, 50%)", (10, 20, 30, 0.5)),
        ("rgb(1,2,3)", (1, 2, 3, 1.0)),
        ("0xff0000", (255, 0, 0, 1.0)),
        ("yellow@0.25", (255, 255, 0, 0.25)),
    ],
)
def test_colour_spellings(value: str, rgba: tuple[int, int, int, float]) -> None:
    assert parse_color(value) == pytest.approx(rgba)


@pytest.mark.parametrize("value", ["nope", "rgba(1,2)", "rgba(0,0,0,2)", "rgb(300,0,0)", ""])
def test_bad_colours_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        parse_color(value)


def test_colours_for_ffmpeg_and_libass() -> None:
    assert ffmpeg_color("rgba(255,0,0,0.5)", opacity=0.5) == "0xff0000@0.25"
    # libass: &HAABBGGRR with AA the transparency.
    assert ass_color("#FF8000") == "&H000080FF"
    assert ass_color("rgba(0,0,255,0)") == "&HFFFF0000"


def test_webvtt_documents_are_read() -> None:
    text = (
        "WEBVTT\n\nNOTE made by hand\n\nintro\n00:01.000 --> 00:02.500 align:start\n"
        "<v Ana>Hello &amp; <i>welcome</i></v>\n\n00:00:03.000 --> 00:00:04.000\n"
        "<c.loud>two</c> <00:00:03.500>words\n"
    )
    assert parse_srt(text) == [
        Cue(1.0, 2.5, "Hello & <i>welcome</i>"),
        Cue(3.0, 4.0, "two words"),
    ]


def test_cues_take_both_spellings_and_not_both_sources() -> None:
    args = AddSubtitlesArgs.model_validate(
        {
            "cues": [
                {"startSeconds": 1, "endSeconds": 2, "text": "a"},
                {"start": 2, "end": 3, "text": "b"},
            ]
        }
    )
    assert [(c.startSeconds, c.endSeconds) for c in args.cues or []] == [(1, 2), (2, 3)]
    with pytest.raises(ValidationError):
        AddSubtitlesArgs.model_validate(
            {"cues": [{"startSeconds": 0, "endSeconds": 1, "text": "a"}], "srt": "x"}
        )


@pytest.mark.parametrize(
    ("start", "end", "window"),
    [
        (None, None, (0.0, 10.0)),
        (-2, None, (8.0, 10.0)),
        (2, -3, (2.0, 7.0)),
        (-4, -1, (6.0, 9.0)),
        (None, 25, (0.0, 10.0)),
    ],
)
def test_overlay_windows_count_negative_seconds_from_the_end(
    start: float | None, end: float | None, window: tuple[float, float]
) -> None:
    item = Overlay.model_validate(
        {"kind": "image", "position": "center", "startSeconds": start, "endSeconds": end}
    )
    assert item.window(10.0) == window


def test_overlay_old_spellings_and_misplaced_options() -> None:
    item = Overlay.model_validate(
        {"kind": "text", "text": "t", "position": "top", "start": 1, "end": 2, "widthPct": 30}
    )
    assert item.anchor() == "top-center" and item.window(5) == (1, 2)
    assert item.misplaced() == ["widthPct"]
    logo = Overlay.model_validate({"kind": "image", "imageIndex": -1, "position": "bottom"})
    assert logo.sourceImageIndex == -1 and logo.anchor() == "bottom-center"
    with pytest.raises(ValidationError):
        Overlay.model_validate({"kind": "text", "text": "t", "startSeconds": 3, "endSeconds": 2})


@pytest.mark.parametrize(
    "arguments",
    [
        {"startSeconds": -2, "endSeconds": 3},
        {"startSeconds": 3, "endSeconds": 2},
        {"startSeconds": 2, "endSeconds": 2},
        {
            "startSeconds": 0,
            "endSeconds": 1,
            "replacementStartSeconds": 2,
            "replacementEndSeconds": 1,
        },
        {"startSeconds": 0, "endSeconds": 1, "replacementStartSeconds": -1},
    ],
)
def test_replacement_windows_that_make_no_sense_are_refused(arguments: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ReplaceSegmentArgs.model_validate(arguments)


def test_replacement_window_sentinels_and_insertions() -> None:
    ReplaceSegmentArgs.model_validate({"startSeconds": -1, "endSeconds": -1})
    ReplaceSegmentArgs.model_validate({"startSeconds": 2, "endSeconds": -1, "prompt": "p"})
    ReplaceSegmentArgs.model_validate(
        {"startSeconds": 2, "endSeconds": 2, "replacementVideoIndex": -1}
    )
