"""What a file is, decided from its bytes (never from a name or a Content-Type header)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MediaKind = Literal["image", "video", "audio"]


@dataclass(frozen=True)
class Sniffed:
    mime: str
    kind: MediaKind
    extension: str


_MP4_BRANDS_QUICKTIME = (b"qt  ",)


def sniff(head: bytes) -> Sniffed | None:
    """Recognise the allowed formats from the first bytes (64 are enough)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image/png", "image", "png")
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image/jpeg", "image", "jpg")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed("image/webp", "image", "webp")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed("image/gif", "image", "gif")
    if head[4:8] == b"ftyp":
        if head[8:12] in _MP4_BRANDS_QUICKTIME:
            return Sniffed("video/quicktime", "video", "mov")
        if head[8:11] == b"M4A":
            return None
        return Sniffed("video/mp4", "video", "mp4")
    if head.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in head[:64]:
        return Sniffed("video/webm", "video", "webm")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return Sniffed("audio/wav", "audio", "wav")
    if head.startswith(b"fLaC"):
        return Sniffed("audio/flac", "audio", "flac")
    if head.startswith(b"OggS"):
        return Sniffed("audio/ogg", "audio", "ogg")
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return Sniffed("audio/mpeg", "audio", "mp3")
    return None


EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
    "audio/wav": "wav",
    "audio/flac": "flac",
    "audio/ogg": "ogg",
    "audio/mpeg": "mp3",
}
