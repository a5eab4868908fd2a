"""Subtitle documents: cues read from SRT or WebVTT text, and written back as SRT (the form
the subtitle renderer reads)."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


_CLOCK = r"(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[,.](\d{1,3}))?"
_TIMING = re.compile(rf"{_CLOCK}\s*-->\s*{_CLOCK}")
# WebVTT markup the renderer does not know (voices, classes, ruby, inline timestamps); the
# italic, bold and underline tags that SRT shares are kept.
_VTT_TAG = re.compile(r"<(?!/?[ibu]>)[^>]*>", re.IGNORECASE)


def _seconds(hours: str | None, minutes: str, secs: str, millis: str | None) -> float:
    return (
        int(hours or 0) * 3600
        + int(minutes) * 60
        + int(secs)
        + int((millis or "0").ljust(3, "0")) / 1000
    )


def parse_srt(text: str) -> list[Cue]:
    """The cues of an SRT or WebVTT document (hours optional, cue settings and identifiers
    ignored); raises ValueError when it holds none."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff").strip()
    vtt = text.startswith("WEBVTT")
    cues = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.strip("\n").split("\n")
        for i, line in enumerate(lines):
            match = _TIMING.search(line)
            if match is None:
                continue
            g = match.groups()
            start, end = _seconds(*g[:4]), _seconds(*g[4:])
            body = "\n".join(lines[i + 1 :]).strip()
            if vtt:
                body = html.unescape(_VTT_TAG.sub("", body)).strip()
            if body and end > start:
                cues.append(Cue(start, end, body))
            break
    if not cues:
        raise ValueError(
            "the subtitle text holds no cue (expected 'HH:MM:SS,mmm --> HH:MM:SS,mmm' lines)"
        )
    return cues


def _srt_time(value: float) -> str:
    ms = round(value * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def plain_cue_text(text: str) -> str:
    """Cue text shown literally: neutralise the subtitle renderer's override codes."""
    text = text.replace("\\", "\\\\").replace("{", "\\{").replace("}", "\\}")
    return re.sub(r"\n\s*\n+", "\n", text.strip())


def write_srt(cues: Sequence[Cue]) -> str:
    blocks = [
        f"{i}\n{_srt_time(c.start)} --> {_srt_time(c.end)}\n{c.text}\n"
        for i, c in enumerate(sorted(cues, key=lambda c: c.start), start=1)
    ]
    return "\n".join(blocks)
