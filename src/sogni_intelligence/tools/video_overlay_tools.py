"""`overlay_video`: burn text and images (logos, stills) into a video, each at an anchor of the
frame, nudged by pixel offsets, for a time window. Plain ffmpeg; see `media/overlay.py`."""

from __future__ import annotations

import shutil
from typing import Any, Literal

from pydantic import AliasChoices, Field, model_validator

from sogni_intelligence.media import overlay
from sogni_intelligence.media.store import AssetRecord
from sogni_intelligence.media.video.probe import inspect
from sogni_intelligence.tools.base import (
    Tool,
    ToolArgs,
    ToolContext,
    ToolError,
    ToolOutput,
    tool_family,
)
from sogni_intelligence.tools.keyframes import FFMPEG, image_file, store_video
from sogni_intelligence.tools.media_context import ImageIndex, VideoIndex
from sogni_intelligence.tools.styling import Color, TextLook

Position = Literal[overlay.Anchor, "top", "bottom"]
_OLD_POSITIONS: dict[str, overlay.Anchor] = {"top": "top-center", "bottom": "bottom-center"}
_TEXT_ONLY = (
    "text",
    "fontSizePct",
    "fontSize",
    "color",
    "outlineColor",
    "backgroundColor",
    "fontWeight",
)
_IMAGE_ONLY = ("sourceImageIndex", "widthPct", "fit")


class Overlay(TextLook):
    kind: Literal["text", "image"]
    position: Position | None = Field(
        None, description="Anchor on the frame; default bottom-center (text), top-right (image)."
    )
    offsetX: float = Field(0, ge=-8192, le=8192, description="Pixels inward from the anchor.")
    offsetY: float = Field(0, ge=-8192, le=8192, description="Pixels inward from the anchor.")
    startSeconds: float | None = Field(
        None,
        validation_alias=AliasChoices("startSeconds", "start"),
        description="Shown from (default 0); a negative value counts back from the end.",
    )
    endSeconds: float | None = Field(
        None,
        validation_alias=AliasChoices("endSeconds", "end"),
        description="Hidden from (default the end); a negative value counts back from the end.",
    )
    text: str | None = Field(None, max_length=2000, description="For kind=text; line breaks kept.")
    backgroundColor: Color | None = Field(
        None, description="A box behind the text, e.g. rgba(0,0,0,0.5); none by default."
    )
    fontWeight: Literal["normal", "bold"] = Field("normal", description="For kind=text.")
    sourceImageIndex: ImageIndex | None = Field(
        None,
        validation_alias=AliasChoices("sourceImageIndex", "imageIndex"),
        description="For kind=image: the image (index convention; default the latest).",
    )
    widthPct: float = Field(15, ge=1, le=100, description="Image width as a % of the video's.")
    fit: Literal["contain", "cover"] = Field(
        "contain",
        description="contain: the whole image at widthPct; cover: fills widthPct of both "
        "sides (100: the whole frame), cropped.",
    )
    opacity: float = Field(1.0, ge=0, le=1, description="0 invisible .. 1 opaque.")

    @model_validator(mode="after")
    def _ordered(self) -> Overlay:
        start, end = self.startSeconds, self.endSeconds
        if start is not None and end is not None and (start < 0) == (end < 0) and end <= start:
            raise ValueError("endSeconds must be after startSeconds")
        return self

    def anchor(self) -> overlay.Anchor:
        if self.position is None:
            return "bottom-center" if self.kind == "text" else "top-right"
        return _OLD_POSITIONS.get(self.position, self.position)  # type: ignore[return-value]

    def window(self, duration: float) -> tuple[float, float]:
        """Start and end in seconds of a video `duration` long (negatives count from the end)."""

        def at(value: float | None, default: float) -> float:
            if value is None:
                return default
            return duration + value if value < 0 else value

        return max(0.0, at(self.startSeconds, 0.0)), min(duration, at(self.endSeconds, duration))

    def misplaced(self) -> list[str]:
        """Arguments given that belong to the other kind of overlay."""
        other = _IMAGE_ONLY if self.kind == "text" else _TEXT_ONLY
        return [name for name in other if name in self.model_fields_set]


class OverlayVideoArgs(ToolArgs):
    sourceVideoIndex: VideoIndex | None = Field(
        None, description="The video (index convention; default the latest)."
    )
    overlays: list[Overlay] = Field(min_length=1, max_length=16, description="Drawn in order.")


def _source(ctx: ToolContext, index: int | None) -> AssetRecord:
    # A negative index with no uploaded video falls back to the latest generated one.
    if index is not None and index < 0 and not ctx.media.uploads["video"]:
        index = None
    return ctx.media.resolve("video", index, "sourceVideoIndex")


async def overlay_video(args: OverlayVideoArgs, ctx: ToolContext) -> ToolOutput:
    source = _source(ctx, args.sourceVideoIndex)
    path = await ctx.store.local_path(source)
    duration = (await inspect(path)).duration
    warnings = []
    scratch = ctx.store.scratch_dir()
    try:
        layers: list[overlay.TextLayer | overlay.ImageLayer] = []
        described: list[dict[str, Any]] = []
        for i, item in enumerate(args.overlays):
            if item.kind == "text" and not (item.text or "").strip():
                raise ToolError("PARAMETER_INVALID", f"overlays[{i}]: a text overlay needs text")
            if wrong := item.misplaced():
                warnings.append(f"overlays[{i}]: {', '.join(wrong)} ignored for a {item.kind}")
            start, end = item.window(duration)
            if end - start <= 0:
                warnings.append(f"overlays[{i}] falls outside the video and is not shown")
                continue
            place = overlay.Placement(
                start=start,
                end=end,
                anchor=item.anchor(),
                offset_x=round(item.offsetX),
                offset_y=round(item.offsetY),
                opacity=item.opacity,
            )
            if item.kind == "text":
                layers.append(
                    overlay.TextLayer(
                        text=item.text or "",
                        place=place,
                        size=item.font_share(),
                        font_px=item.font_px(),
                        color=item.color or "#FFFFFF",
                        outline=item.outlineColor or "#000000",
                        background=item.backgroundColor,
                        bold=item.fontWeight == "bold",
                    )
                )
                described.append({"kind": "text", "text": item.text, "window": [start, end]})
            else:
                argument = f"overlays[{i}].sourceImageIndex"
                image = ctx.media.resolve("image", item.sourceImageIndex, argument)
                png = await image_file(ctx, image, scratch / f"overlay-{i}.png")
                layers.append(
                    overlay.ImageLayer(
                        path=png,
                        place=place,
                        width_fraction=item.widthPct / 100,
                        fit=item.fit,
                    )
                )
                described.append({"kind": "image", "image": image.id, "window": [start, end]})
        ctx.progress(0.2, "drawing overlays")
        out = scratch / "overlaid.mp4"
        await overlay.burn_layers(path, out, layers, scratch)
        ctx.progress(0.9, "storing")
        meta = {"operation": "overlay", "source": source.id, "overlays": described}
        record = await store_video(ctx, out, "overlay_video", FFMPEG, meta)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ToolOutput([record], model=FFMPEG, backend=FFMPEG, warnings=warnings)


TOOLS = tool_family(
    "media",
    "video",
    [
        Tool(
            "overlay_video",
            "Burn text (size, colours, outline, box, weight) and images (logos, or full-frame "
            "stills with fit=cover) into a video at an anchor with pixel offsets, each for an "
            "optional window (negative seconds count from the end). The length stays the same.",
            OverlayVideoArgs,
            overlay_video,
            cost=lambda args: 1.0,
            needs=frozenset({"video"}),
        ),
    ],
)
