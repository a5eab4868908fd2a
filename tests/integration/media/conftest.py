"""Real media files for the media tests, made once per session."""

from __future__ import annotations

import io
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from sogni_intelligence.media.ffmpeg import ffmpeg_exe


@dataclass(frozen=True)
class Samples:
    png: bytes
    wav: bytes
    mp4: bytes


def make_png(size: tuple[int, int] = (64, 48), color: str = "teal") -> bytes:
    image = Image.new("RGB", size, color)
    for x in range(0, size[0], 8):
        for y in range(size[1]):
            image.putpixel((x, y), (250, 200, 10))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *args],
        check=True,
        timeout=120,
    )


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Samples:
    folder: Path = tmp_path_factory.mktemp("samples")
    wav, mp4 = folder / "tone.wav", folder / "clip.mp4"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=0.5", "-ac", "1", str(wav))
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x48:rate=10:duration=0.5",
        "-c:v",
        "mpeg4",
        "-pix_fmt",
        "yuv420p",
        str(mp4),
    )
    return Samples(png=make_png(), wav=wav.read_bytes(), mp4=mp4.read_bytes())


@contextmanager
def serve_files() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A real HTTP server on a free local port: (its URL, path -> bytes it serves; 404 else)."""
    served: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = served.get(self.path)
            self.send_response(200 if data is not None else 404)
            self.send_header("Content-Length", str(len(data or b"")))
            self.end_headers()
            self.wfile.write(data or b"")

        def log_message(self, *_: object) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    finally:
        httpd.shutdown()
