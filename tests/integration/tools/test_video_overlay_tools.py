"""overlay_video with the hosted manifest's spellings, checked on decoded frames: each overlay
shows inside its window and not outside it, where its anchor and offsets put it, at its size and
in its colours."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from sogni_intelligence.tools.base import ToolContext
from tests.integration.tools.video_helpers import (
    GREY_SIZE,
    differs,
    frame_at,
    grey_clip_output,
    run,
    upload_grey_clip,
    upload_video,
)

W, H = GREY_SIZE
MARGIN = 7  # 4 % of the short side: the safe margin around every anchor


def mask(frame: np.ndarray, red: tuple[int, int], green: tuple[int, int], blue: tuple[int, int]):
    """Pixels whose channels fall in the given ranges."""
    r, g, b = frame[..., 0], frame[..., 1], frame[..., 2]
    return (
        (r >= red[0]) & (r <= red[1]) & (g >= green[0]) & (g <= green[1])
        & (b >= blue[0]) & (b <= blue[1])
    )  # fmt: skip


def rows_and_columns(hits: np.ndarray) -> tuple[range, range]:
    ys, xs = np.nonzero(hits)
    assert ys.size, "nothing of that colour in the frame"
    return range(int(ys.min()), int(ys.max()) + 1), range(int(xs.min()), int(xs.max()) + 1)


async def upload_png(ctx: ToolContext, image: Image.Image) -> None:
    out = io.BytesIO()
    image.save(out, "PNG")
    ctx.media.add_upload(await ctx.store.put_bytes(ctx.owner, out.getvalue()))


async def test_text_and_logo_overlays(ctx: ToolContext, tmp_path: Path) -> None:
    source = await upload_grey_clip(ctx, tmp_path, 3.0)
    await upload_png(ctx, Image.new("RGB", (64, 32), (0, 255, 0)))
    result = await run(
        ctx,
        "overlay_video",
        sourceVideoIndex=-1,
        overlays=[
            {
                "kind": "text",
                "text": "HELLO",
                "position": "top-center",
                "offsetY": 10,
                "startSeconds": 0.5,
                "endSeconds": 1.5,
                "fontSizePct": 20,
                "color": "#FFFF00",
                "outlineColor": "#0000FF",
                "backgroundColor": "rgba(255,0,0,1)",
                "fontWeight": "bold",
            },
            {
                "kind": "text",
                "text": "HELLO",
                "position": "bottom-center",
                "startSeconds": 0.5,
                "endSeconds": 1.5,
                "fontSizePct": 20,
                "color": "#FFFF00",
                "outlineColor": "#0000FF",
                "widthPct": 40,
            },
            {
                "kind": "image",
                "sourceImageIndex": -1,
                "position": "bottom-left",
                "offsetX": 20,
                "widthPct": 25,
                "startSeconds": -1,
            },
        ],
    )
    assert result["ok"], result
    assert result["warnings"] == ["overlays[1]: widthPct ignored for a text"]
    path = await grey_clip_output(ctx, result, 3.0)
    plain = frame_at(await ctx.store.local_path(source), 1.0, tmp_path / "plain.png")

    inside = frame_at(path, 1.0, tmp_path / "inside.png")
    top, bottom = inside[: H // 2], inside[H // 2 :]
    # The box of the top caption: a red background that starts 10 px below the safe margin.
    box_rows, box_columns = rows_and_columns(mask(top, (200, 255), (0, 60), (0, 60)))
    assert abs(box_rows.start - (MARGIN + 10)) <= 2, box_rows
    # Text 20 % of the frame high: the box is about that high, and centred.
    assert 0.17 * H <= len(box_rows) <= 0.4 * H, box_rows
    assert abs((box_columns.start + box_columns.stop) / 2 - W / 2) <= 4, box_columns
    yellow = (200, 255), (200, 255), (0, 90)
    blue = (0, 60), (0, 60), (170, 255)
    assert mask(top, *blue).sum() > 20  # the outline colour
    # The bold caption covers more pixels in its fill colour than the same text in normal weight.
    bold_fill, normal_fill = mask(top, *yellow).sum(), mask(bottom, *yellow).sum()
    assert normal_fill > 100 and bold_fill > 1.15 * normal_fill, (bold_fill, normal_fill)
    assert mask(bottom, (200, 255), (0, 60), (0, 60)).sum() == 0  # no box when none is asked
    green = (0, 80), (200, 255), (0, 80)
    assert not mask(inside, *green).any()  # the logo waits for the last second

    for at in (0.2, 1.8):  # outside the captions' window the top and bottom are untouched
        outside = frame_at(path, at, tmp_path / f"out-{at}.png")
        assert differs(plain[:60], outside[:60]) < 3 and differs(plain[-40:], outside[-40:]) < 3

    late = frame_at(path, 2.5, tmp_path / "late.png")
    rows, columns = rows_and_columns(mask(late, *green))
    assert abs(len(columns) - 0.25 * W) <= 3, columns  # 25 % of the frame wide
    assert abs(len(rows) - 0.25 * W / 2) <= 3, rows  # aspect ratio kept (64x32)
    assert abs(columns.start - (MARGIN + 20)) <= 2, columns  # 20 px inward from the left
    assert abs(rows.stop - (H - MARGIN)) <= 2, rows  # sitting on the bottom margin


async def test_full_frame_cover_image_for_a_window(ctx: ToolContext, tmp_path: Path) -> None:
    await upload_grey_clip(ctx, tmp_path, 3.0)
    still = Image.new("RGB", (100, 100), (255, 0, 0))
    still.paste((0, 0, 255), (50, 0, 100, 100))  # left half red, right half blue
    await upload_png(ctx, still)
    result = await run(
        ctx,
        "overlay_video",
        overlays=[
            {
                "kind": "image",
                "sourceImageIndex": -1,
                "position": "center",
                "widthPct": 100,
                "fit": "cover",
                "startSeconds": 1,
                "endSeconds": -1,
            }
        ],
    )
    assert result["ok"], result
    path = await grey_clip_output(ctx, result, 3.0)
    covered = frame_at(path, 1.5, tmp_path / "covered.png")
    red = mask(covered, (200, 255), (0, 60), (0, 60))
    blue = mask(covered, (0, 60), (0, 60), (200, 255))
    assert (red | blue).mean() > 0.97  # the whole frame is the still
    assert red[:, : W // 2 - 4].mean() > 0.97 and blue[:, W // 2 + 4 :].mean() > 0.97
    for at in (0.5, 2.5):  # not before 1 s, and gone for the last second (endSeconds=-1)
        assert not mask(
            frame_at(path, at, tmp_path / f"f{at}.png"), (200, 255), (0, 60), (0, 60)
        ).any()


async def test_overlay_errors(ctx: ToolContext, tmp_path: Path) -> None:
    empty = await run(ctx, "overlay_video", overlays=[{"kind": "text", "text": "hi"}])
    assert empty["ok"] is False and empty["error_type"] == "ASSET_NOT_FOUND"
    await upload_video(ctx, tmp_path, 1.0)
    for overlays in (
        [{"kind": "text", "position": "top-left"}],  # text needed
        [{"kind": "text", "text": "x", "position": "middle"}],
        [{"kind": "text", "text": "x", "color": "not-a-colour"}],
        [{"kind": "text", "text": "x", "fontSizePct": 31}],
        [{"kind": "image", "widthPct": 0}],
        [{"kind": "text", "text": "x", "startSeconds": 2, "endSeconds": 1}],
    ):
        bad = await run(ctx, "overlay_video", overlays=overlays)
        assert bad["ok"] is False and bad["error_type"] == "PARAMETER_INVALID", overlays
    no_image = await run(ctx, "overlay_video", overlays=[{"kind": "image", "position": "center"}])
    assert no_image["ok"] is False and no_image["error_type"] == "ASSET_NOT_FOUND"
    late = await run(
        ctx, "overlay_video", overlays=[{"kind": "text", "text": "x", "startSeconds": 5}]
    )
    assert late["ok"] and late["warnings"] == [
        "overlays[0] falls outside the video and is not shown"
    ]
