"""add_subtitles with the hosted manifest's spellings, checked on decoded frames: a line shows
inside its cue's window and not outside it, at its position, size and colours; WebVTT input;
auto_transcribe without a speech recogniser."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sogni_intelligence.tools.base import ToolContext
from tests.integration.tools.conftest import asset_file
from tests.integration.tools.video_helpers import (
    GREY_SIZE,
    differs,
    frame_at,
    grey_clip_output,
    run,
    upload_grey_clip,
    upload_video,
)

H = GREY_SIZE[1]


def changed(a: np.ndarray, b: np.ndarray) -> int:
    """How many pixels of two same-sized regions differ clearly (text, not encoder noise)."""
    return int((np.abs(a - b).max(axis=-1) > 40).sum())


def coloured(frame: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 70) -> np.ndarray:
    return (np.abs(frame - np.array(rgb, float)) <= tolerance).all(axis=-1)


async def test_cues_in_their_windows_with_style(ctx: ToolContext, tmp_path: Path) -> None:
    source = await upload_grey_clip(ctx, tmp_path, 3.0)
    result = await run(
        ctx,
        "add_subtitles",
        sourceVideoIndex=-1,
        cues=[
            {"startSeconds": 0.5, "endSeconds": 1.5, "text": "Hello there"},
            {"startSeconds": 2.2, "endSeconds": 2.8, "text": "Bye"},
        ],
        style={
            "fontSizePct": 15,
            "color": "#FFFF00",
            "outlineColor": "#0000FF",
            "position": "center",
        },
    )
    assert result["ok"] and result["cueCount"] == 2, result
    assert "warnings" not in result
    path = await grey_clip_output(ctx, result, 3.0)
    plain = frame_at(await ctx.store.local_path(source), 1.0, tmp_path / "plain.png")
    middle, edges = slice(H // 4, 3 * H // 4), np.r_[0 : H // 4, 3 * H // 4 : H]

    shown = frame_at(path, 1.0, tmp_path / "shown.png")
    fill, outline = coloured(shown, (255, 255, 0)), coloured(shown, (0, 0, 255))
    assert fill.sum() > 150 and outline.sum() > 50
    assert differs(plain[edges], shown[edges]) < 1  # centred: nothing at the top or bottom
    ys = np.nonzero(fill | outline)[0]
    assert abs((ys.min() + ys.max()) / 2 - H / 2) <= 0.1 * H  # vertically in the middle
    # 15 % of 180 px is a 27 px font: its letters span roughly 15 to 40 rows.
    assert 0.08 * H <= ys.max() - ys.min() <= 0.25 * H, (ys.min(), ys.max())

    for at in (0.2, 1.8):  # before and between the cues the frame is untouched
        between = frame_at(path, at, tmp_path / f"between-{at}.png")
        assert differs(plain[middle], between[middle]) < 1, at
    second = frame_at(path, 2.5, tmp_path / "second.png")
    assert coloured(second, (255, 255, 0)).sum() > 50  # the second cue in its own window
    # "Bye" is a shorter line than "Hello there".
    assert coloured(second, (255, 255, 0)).sum() < fill.sum()


async def test_webvtt_bottom_lines_and_old_spellings(ctx: ToolContext, tmp_path: Path) -> None:
    source = await upload_grey_clip(ctx, tmp_path, 2.0)
    vtt = "WEBVTT\n\n00:00.000 --> 00:01.000 line:90%\n<v Ana>First</v>\n"
    result = await run(ctx, "add_subtitles", srt=vtt)
    assert result["ok"] and result["cueCount"] == 1, result
    path = await grey_clip_output(ctx, result, 2.0)
    plain = frame_at(await ctx.store.local_path(source), 0.5, tmp_path / "plain.png")
    shown = frame_at(path, 0.5, tmp_path / "shown.png")
    assert changed(plain[-50:], shown[-50:]) > 30  # default position: the bottom
    assert changed(plain[:100], shown[:100]) == 0
    assert changed(plain[-50:], frame_at(path, 1.5, tmp_path / "after.png")[-50:]) == 0

    old = await run(
        ctx,
        "add_subtitles",
        cues=[{"start": 0, "endSeconds": 1, "text": "mixed spellings"}],
        style={"fontSize": 20, "position": "top"},
    )
    assert old["ok"], old
    top = frame_at(await asset_file(ctx, old), 0.5, tmp_path / "top.png")
    assert changed(plain[:50], top[:50]) > 30
    # Without sourceVideoIndex the latest video (the subtitled one) gets the new line.
    assert old["output_assets"][0]["metadata"]["source"] == result["output_assets"][0]["asset_id"]


async def test_auto_transcribe_without_a_recogniser(ctx: ToolContext, tmp_path: Path) -> None:
    await upload_video(ctx, tmp_path, 1.0)
    alone = await run(ctx, "add_subtitles", auto_transcribe=True)
    assert alone["ok"] is False and alone["error_type"] == "USER_INPUT_INCOMPLETE"
    assert "speech-to-text" in alone["message"]
    with_cues = await run(
        ctx,
        "add_subtitles",
        auto_transcribe=True,
        cues=[{"startSeconds": 0, "endSeconds": 0.5, "text": "given"}],
    )
    assert with_cues["ok"] and with_cues["cueCount"] == 1, with_cues
    assert any("auto_transcribe" in w for w in with_cues["warnings"])
    nothing = await run(ctx, "add_subtitles", cues=[])
    assert nothing["ok"] is False and nothing["error_type"] == "USER_INPUT_INCOMPLETE"


async def test_a_cue_without_a_length_is_shown_for_a_line_s_time(
    ctx: ToolContext, tmp_path: Path
) -> None:
    """A cue that ends where it starts (a schema cannot forbid it) runs for UNTIMED_CUE_S."""
    source = await upload_grey_clip(ctx, tmp_path, 3.0)
    result = await run(
        ctx,
        "add_subtitles",
        sourceVideoIndex=-1,
        cues=[{"startSeconds": 0.5, "endSeconds": 0.5, "text": "Hello there"}],
        style={"fontSizePct": 15, "color": "#FFFF00", "position": "center"},
    )
    assert result["ok"], result
    assert result["warnings"] == [
        "the cue at 0.5 s ended at or before its start; it is shown for 2 s"
    ]
    path = await grey_clip_output(ctx, result, 3.0)
    plain = frame_at(await ctx.store.local_path(source), 1.0, tmp_path / "plain.png")
    middle = slice(H // 4, 3 * H // 4)
    assert coloured(frame_at(path, 2.0, tmp_path / "in.png"), (255, 255, 0)).sum() > 50
    after = frame_at(path, 2.8, tmp_path / "after.png")  # past 0.5 + 2 s
    assert differs(plain[middle], after[middle]) < 1
