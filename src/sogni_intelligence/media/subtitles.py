"""Subtitles burnt into a video with libass: each cue shows in its own time window at the
bottom, the top or the middle of the frame. The size (made even), length and sound stay."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from sogni_intelligence.media.srt import Cue, write_srt
from sogni_intelligence.media.text_style import FONT_DIR, FONT_NAME, ass_color
from sogni_intelligence.media.video.encoding import escape, num
from sogni_intelligence.media.video.probe import reencoding

SubtitlePosition = Literal["bottom", "top", "center"]

# Per-cue alignment tags: libass reads a forced Alignment in the legacy SSA numbering for
# converted SRT, but the tag always uses the keypad layout (8 top centre, 5 middle).
_ALIGN = {"bottom": "", "top": "{\\an8}", "center": "{\\an5}"}


async def burn_subtitles(
    source: Path,
    out: Path,
    cues: Sequence[Cue],
    workdir: Path,
    *,
    size: float = 0.06,
    font_px: int | None = None,
    color: str = "#FFFFFF",
    outline: str = "#000000",
    position: SubtitlePosition = "bottom",
) -> tuple[float, int, int]:
    """Render cues (SRT-style text: <i>, <b> and {\\an8}-style codes work) into the pictures.
    `size` is the font height as a fraction of the frame height unless `font_px` fixes it.

    Returns (duration, width, height)."""
    kept = await reencoding(source)
    height = kept.height
    srt_path = workdir / "cues.srt"
    tag = _ALIGN[position]
    srt_path.write_text(write_srt([Cue(c.start, c.end, tag + c.text) for c in cues]), "utf-8")
    # SRT is laid out on a 288-line canvas that libass scales to the video height.
    scale = 288 / height
    font = (font_px or max(8, round(height * size))) * scale
    style = ",".join(
        [
            f"FontName={FONT_NAME}",
            f"FontSize={num(round(font, 2))}",
            f"PrimaryColour={ass_color(color)}",
            f"OutlineColour={ass_color(outline)}",
            "BorderStyle=1",
            f"Outline={num(round(max(1.0, font / 12), 2))}",
            "Shadow=0",
            f"MarginV={round(height * 0.05 * scale)}",
        ]
    )
    subtitles = (
        f"subtitles=filename={escape(str(srt_path))}:fontsdir={escape(str(FONT_DIR))}"
        f":charenc=UTF-8:force_style={escape(style)}"
    )
    graph = f"[0:v]{kept.picture_chain()},{subtitles},format=yuv420p[v];{kept.sound_chain()}"
    await kept.encode(["-i", str(source)], graph, out)
    return kept.length, kept.width, height
