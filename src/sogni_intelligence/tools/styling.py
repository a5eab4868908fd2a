"""Text styling arguments shared by `overlay_video` and `add_subtitles`: colours and font
size, spelled as the hosted tools spell them (plus a pixel size of our own)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from sogni_intelligence.media.text_style import parse_color
from sogni_intelligence.tools.base import ToolArgs

DEFAULT_FONT_PCT = 6.0


def _check_color(value: str) -> str:
    parse_color(value)  # raises ValueError with the reason
    return value


Color = Annotated[str, AfterValidator(_check_color)]


class TextLook(ToolArgs):
    """How text looks: font size (a share of the frame height, or pixels) and colours."""

    fontSizePct: float | None = Field(
        None, ge=1, le=30, description="Font height as a % of the video height (default 6)."
    )
    fontSize: int | None = Field(
        None, ge=8, le=300, description="Font height in px (used when fontSizePct is absent)."
    )
    color: Color | None = Field(
        None, description="Fill colour: a CSS name, #RRGGBB, rgba(...); default #FFFFFF."
    )
    outlineColor: Color | None = Field(
        None, description="Colour of the thin outline around the letters; default #000000."
    )

    def font_share(self) -> float:
        """Font height as a fraction of the frame height."""
        return (self.fontSizePct or DEFAULT_FONT_PCT) / 100

    def font_px(self) -> int | None:
        """A fixed pixel size, when the caller gave one and no percentage."""
        return self.fontSize if self.fontSizePct is None else None
