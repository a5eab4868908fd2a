import pytest

from sogni_intelligence.media.store import AssetRecord
from sogni_intelligence.tools.base import ToolError
from sogni_intelligence.tools.media_context import MediaContext


def _asset(name: str, kind: str = "image") -> AssetRecord:
    return AssetRecord(
        id=name, owner="o", sha256="0" * 64, mime="image/png", kind=kind, size_bytes=1
    )


def test_uploads_are_negative_and_generated_zero_based() -> None:
    media = MediaContext()
    assert media.add_upload(_asset("up1")) == -1
    assert media.add_upload(_asset("up2")) == -2
    assert media.add_generated([_asset("g0"), _asset("g1")]) == [0, 1]
    assert media.add_generated([_asset("v0", "video")]) == [0]  # one list per media type
    assert media.add_generated([_asset("g2")]) == [2]  # stable across rounds
    assert media.resolve("image", -1, "i").id == "up1"
    assert media.resolve("image", -2, "i").id == "up2"
    assert media.resolve("image", 1, "i").id == "g1"
    assert media.resolve("video", 0, "i").id == "v0"


def test_omitted_index_is_latest_generated_else_first_upload() -> None:
    media = MediaContext()
    media.add_upload(_asset("up1"))
    media.add_upload(_asset("up2"))
    assert media.resolve("image", None, "i").id == "up1"
    media.add_generated([_asset("g0"), _asset("g1")])
    assert media.resolve("image", None, "i").id == "g1"


def test_special_index_rules() -> None:
    media = MediaContext()
    media.add_upload(_asset("vid-up", "video"))
    assert media.latest_video_or_first_upload(-1, "videoIndex").id == "vid-up"
    media.add_generated([_asset("vid-gen", "video")])
    assert media.latest_video_or_first_upload(-1, "videoIndex").id == "vid-gen"
    media.add_upload(_asset("aud", "audio"))
    assert media.resolve_upload("audio", 0, "audioSourceIndex").id == "aud"


@pytest.mark.parametrize(
    ("kind", "index"), [("image", 0), ("image", -1), ("video", None), ("audio", 3)]
)
def test_missing_media_is_asset_not_found(kind: str, index: int | None) -> None:
    with pytest.raises(ToolError) as info:
        MediaContext().resolve(kind, index, "sourceIndex")  # type: ignore[arg-type]
    assert info.value.error_type == "ASSET_NOT_FOUND"
    assert "sourceIndex" in info.value.message
