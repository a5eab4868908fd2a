"""Arguments of the GPU image utilities: image_to_3d, remove_background and segment_image, as
the hosted manifest defines them. Each reads an original image by index or by URL."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, model_validator

from sogni_intelligence.tools.base import ToolArgs
from sogni_intelligence.tools.media_context import ImageIndex
from sogni_intelligence.tools.unavailable_args import MediaUrl, Source, UnavailableArgs


def _not_both(index: int | None, url: str | None, names: str) -> None:
    if index is not None and url is not None:
        raise ValueError(f"give {names}, not both")


class _SourceImageArgs(UnavailableArgs):
    sourceImageIndex: ImageIndex | None = Field(
        None, description="The original image (index convention); omit for the latest."
    )
    source_image_url: MediaUrl | None = Field(None, description="Or the image's URL.")

    @model_validator(mode="after")
    def _one_source(self) -> _SourceImageArgs:
        _not_both(self.sourceImageIndex, self.source_image_url, "sourceImageIndex or its URL")
        return self

    def sources(self) -> list[Source]:
        if self.source_image_url is not None:
            return []  # fetched by the backend that would run the tool
        return [Source("image", self.sourceImageIndex, "sourceImageIndex")]


class ImageTo3dArgs(_SourceImageArgs):
    leftViewImageIndex: ImageIndex | None = Field(None, description="The subject's own left side.")
    backViewImageIndex: ImageIndex | None = Field(None, description="The subject from behind.")
    rightViewImageIndex: ImageIndex | None = Field(
        None, description="The subject's own right side."
    )
    left_view_image_url: MediaUrl | None = Field(None, description="Or the left view's URL.")
    back_view_image_url: MediaUrl | None = Field(None, description="Or the back view's URL.")
    right_view_image_url: MediaUrl | None = Field(None, description="Or the right view's URL.")
    meshTargetFaces: int = Field(700_000, ge=5000, le=700_000, description="Triangle budget.")
    textureSize: int = Field(4096, ge=1024, le=4096, description="Colour texture side in px.")
    normalMapSize: int = Field(2048, ge=512, le=2048, description="Normal map side in px.")
    ambientOcclusionSize: int = Field(1024, ge=256, le=1024, description="AO map side in px.")
    shapeResolution: Literal[1024, 1536] = Field(1024, description="Shape grid resolution.")

    def _views(self) -> list[tuple[str, int | None, str | None]]:
        return [
            (side, getattr(self, f"{side}ViewImageIndex"), getattr(self, f"{side}_view_image_url"))
            for side in ("left", "back", "right")
        ]

    @model_validator(mode="after")
    def _one_source_per_view(self) -> ImageTo3dArgs:
        for side, index, url in self._views():
            _not_both(index, url, f"{side}ViewImageIndex or {side}_view_image_url")
        return self

    def sources(self) -> list[Source]:
        found = super().sources()
        for side, index, _ in self._views():
            if index is not None:
                found.append(Source("image", index, f"{side}ViewImageIndex"))
        return found


class RemoveBackgroundArgs(_SourceImageArgs):
    applyMask: bool = Field(True, description="True: transparent cutout; false: the soft mask.")


class SegmentPoint(ToolArgs):
    x: float = Field(ge=0, le=1, description="0 is the left edge, 1 the right.")
    y: float = Field(ge=0, le=1, description="0 is the top edge, 1 the bottom.")
    label: Literal["positive", "negative"] = Field(description="Include or exclude here.")


class SegmentBox(ToolArgs):
    x0: float = Field(ge=0, le=1)
    y0: float = Field(ge=0, le=1)
    x1: float = Field(ge=0, le=1)
    y1: float = Field(ge=0, le=1)
    label: Literal["positive", "negative"] = Field("positive", description="negative needs text.")


class SegmentImageArgs(_SourceImageArgs):
    text: str | None = Field(
        None,
        min_length=1,
        max_length=240,
        validation_alias=AliasChoices("text", "prompt"),
        description="What to select, e.g. 'the red suitcase'.",
    )
    points: list[SegmentPoint] | None = Field(
        None, max_length=32, description="Clicks in 0-1 image coordinates."
    )
    boxes: list[SegmentBox] | None = Field(
        None, max_length=16, description="Boxes in 0-1 image coordinates."
    )
    maxInstances: int | None = Field(None, ge=1, le=16, description="Keep the N strongest.")
    threshold: float = Field(0.5, ge=0, le=1, description="Lowest confidence kept.")
    multimask: bool | None = Field(None, description="Several candidates per point (default).")
    applyMask: bool = Field(False, description="True: cut-out foreground; false: the mask.")

    @model_validator(mode="after")
    def _prompted(self) -> SegmentImageArgs:
        points, boxes = self.points or [], self.boxes or []
        if points and self.text:
            raise ValueError("points cannot be combined with text")
        if points and len(boxes) > 1:
            raise ValueError("points combine with at most one box")
        return self

    def missing(self) -> list[str]:
        points, boxes = self.points or [], self.boxes or []
        needs = [
            f"boxes[{i}] needs x0 < x1 and y0 < y1"
            for i, box in enumerate(boxes)
            if box.x1 <= box.x0 or box.y1 <= box.y0
        ]
        if any(box.label == "negative" for box in boxes) and not self.text:
            needs.append("a negative box needs text")
        positive = [p for p in points if p.label == "positive"]
        positive += [b for b in boxes if b.label == "positive"]
        if not self.text and not positive:
            needs.append("say what to select: text, a positive point or a positive box")
        return needs
