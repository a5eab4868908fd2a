"""What a model may call in a session: index arguments narrowed to the media that exists,
tools that need missing media withheld, and the same facts checked on calls made anyway."""

from typing import Any

import jsonschema
import pytest

from sogni_intelligence.media.store import AssetRecord
from sogni_intelligence.tools.call_schema import call_problems, offered_definition
from sogni_intelligence.tools.catalog import CATALOG
from sogni_intelligence.tools.media_context import MediaContext


def _asset(name: str, kind: str = "image") -> AssetRecord:
    return AssetRecord(
        id=name, owner="o", sha256="0" * 64, mime="image/png", kind=kind, size_bytes=1
    )


def _media(uploads: int = 0, generated: int = 0, kind: str = "image") -> MediaContext:
    media = MediaContext()
    for i in range(uploads):
        media.add_upload(_asset(f"u{i}", kind))
    media.add_generated([_asset(f"g{i}", kind) for i in range(generated)])
    return media


def _parameters(name: str, media: MediaContext) -> dict[str, Any]:
    definition = offered_definition(CATALOG[name], media)
    assert definition is not None
    return definition["function"]["parameters"]


def _index_values(schema: dict[str, Any]) -> list[int]:
    [branch] = [b for b in schema["anyOf"] if "enum" in b]
    return branch["enum"]


def test_index_arguments_list_exactly_the_indices_that_exist() -> None:
    parameters = _parameters("edit_image", _media(uploads=2, generated=3))
    assert _index_values(parameters["properties"]["sourceImageIndex"]) == [0, 1, 2, -1, -2]
    references = parameters["properties"]["referenceImageIndices"]
    [array] = [b for b in references["anyOf"] if b.get("type") == "array"]
    assert array["items"] == {"enum": [0, 1, 2, -1, -2]}
    # The narrowed schema is still a valid JSON Schema that refuses an invented index.
    validator = jsonschema.Draft202012Validator(parameters)
    assert validator.is_valid({"prompt": "x", "sourceImageIndex": -2})
    assert not validator.is_valid({"prompt": "x", "sourceImageIndex": 3})


def test_index_arguments_with_nothing_to_point_at_are_left_out() -> None:
    parameters = _parameters("generate_image", MediaContext())
    assert "sourceImageIndex" not in parameters["properties"]
    assert "prompt" in parameters["properties"]  # the rest stays as it was
    video = _parameters("generate_video", MediaContext())
    for name in ("referenceImageIndices", "referenceVideoIndices", "keyframes"):
        assert name not in video["properties"], name
    assert "KeyframeRef" not in video.get("$defs", {})
    # Images exist, so keyframes (each naming an image) can be offered again.
    with_images = _parameters("generate_video", _media(generated=1))
    assert with_images["$defs"]["KeyframeRef"]["properties"]["imageIndex"]["enum"] == [0]


def test_a_tool_whose_needed_media_is_missing_is_not_offered() -> None:
    assert offered_definition(CATALOG["edit_image"], MediaContext()) is None
    assert offered_definition(CATALOG["add_subtitles"], _media(uploads=1)) is None
    assert offered_definition(CATALOG["add_subtitles"], _media(uploads=1, kind="video"))
    assert offered_definition(CATALOG["generate_image"], MediaContext()) is not None


def test_a_tool_this_server_cannot_run_is_not_offered() -> None:
    """It would only answer MODEL_UNAVAILABLE; it stays in the catalog for the contract."""
    assert offered_definition(CATALOG["remove_background"], _media(uploads=1)) is None
    assert "remove_background" in CATALOG


def test_minus_one_means_the_latest_video_where_a_tool_says_so() -> None:
    parameters = _parameters("extend_video", _media(generated=2, kind="video"))
    assert parameters["properties"]["videoIndex"]["enum"] == [0, 1, -1]
    assert call_problems(CATALOG["extend_video"], {"videoIndex": -1}, _media(1, 0, "video")) == []


def test_a_session_without_index_arguments_gets_the_shared_definition() -> None:
    tool = CATALOG["generate_music"]
    assert offered_definition(tool, MediaContext()) is tool.definition()


@pytest.mark.parametrize(
    ("tool", "arguments", "media", "expected"),
    [
        (
            "generate_image",
            {"prompt": "a cat", "sourceImageIndex": 1},
            MediaContext(),
            ["sourceImageIndex=1 points at no image: this session has no image yet"],
        ),
        (
            "edit_image",
            {"prompt": "x", "sourceImageIndex": 5, "referenceImageIndices": [0, -2]},
            _media(uploads=1, generated=2),
            [
                "sourceImageIndex=5 points at no image: this session has generated images "
                "at 0..1 and uploaded images at -1",
                "referenceImageIndices[1]=-2 points at no image: this session has generated "
                "images at 0..1 and uploaded images at -1",
            ],
        ),
        (
            "generate_video",
            {"prompt": "x", "keyframes": [{"imageIndex": 4, "atSeconds": 0}]},
            _media(generated=1),
            [
                "keyframes[0].imageIndex=4 points at no image: this session has generated "
                "images at 0"
            ],
        ),
        (
            "edit_image",
            {"prompt": "x"},
            MediaContext(),
            [
                "edit_image needs an image and this session has no image yet: generate one "
                "first, or ask the user to upload one"
            ],
        ),
        ("edit_image", {"prompt": "x", "sourceImageIndex": -1}, _media(uploads=1), []),
    ],
    ids=["invented-index", "out-of-range", "nested", "needs-media", "valid"],
)
def test_calls_are_checked_against_the_session(
    tool: str, arguments: dict[str, Any], media: MediaContext, expected: list[str]
) -> None:
    assert call_problems(CATALOG[tool], arguments, media) == expected


def test_a_join_is_offered_only_with_two_videos_to_join() -> None:
    assert offered_definition(CATALOG["stitch_video"], _media(uploads=1, kind="video")) is None
    parameters = _parameters("stitch_video", _media(uploads=1, generated=1, kind="video"))
    indices = parameters["properties"]["videoIndices"]
    assert indices["minItems"] == 2 and indices["items"] == {"enum": [0, -1]}


def test_asset_ids_are_the_sessions_own() -> None:
    media = _media(uploads=1, generated=1)
    assert _parameters("inspect_asset", media)["properties"]["asset_id"] == {"enum": ["u0", "g0"]}
    mapped = _parameters("map_assets_for_model", media)["properties"]["asset_ids"]
    assert mapped["items"] == {"enum": ["u0", "g0"]}
    # With no media there is nothing to name: the tools that need an id are not offered.
    for name in ("inspect_asset", "label_asset", "map_assets_for_model"):
        assert offered_definition(CATALOG[name], MediaContext()) is None, name
    arguments = {"model": "seedance2", "asset_ids": ["image1"]}
    assert call_problems(CATALOG["map_assets_for_model"], arguments, media) == [
        "asset_ids[0]='image1' is no asset of this session (its asset ids: u0, g0)"
    ]


def test_a_definition_naming_assets_is_not_shared_between_sessions() -> None:
    first = _parameters("inspect_asset", _media(uploads=1))
    second = _parameters("inspect_asset", _media(generated=1))
    assert first["properties"]["asset_id"]["enum"] == ["u0"]
    assert second["properties"]["asset_id"]["enum"] == ["g0"]


def test_metadata_is_offered_for_the_kinds_of_media_there_are() -> None:
    assert offered_definition(CATALOG["extract_metadata"], MediaContext()) is None
    parameters = _parameters("extract_metadata", _media(uploads=1, kind="audio"))
    [kinds] = [b for b in parameters["properties"]["mediaType"]["anyOf"] if "enum" in b]
    assert kinds == {"enum": ["audio"]}
    assert "sourceImageIndex" not in parameters["properties"]
    assert call_problems(CATALOG["extract_metadata"], {}, MediaContext()) == [
        "extract_metadata needs media (audio, image, video) and this session has none yet: "
        "generate some first, or ask the user to upload some"
    ]
    assert call_problems(
        CATALOG["extract_metadata"], {"mediaType": "video"}, _media(uploads=1, kind="audio")
    ) == ["mediaType='video': this session has no video yet"]
