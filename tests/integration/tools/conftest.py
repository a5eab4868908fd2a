"""Fixtures for tool tests: a real asset store (SQLite file + blob directory) and a context."""

from __future__ import annotations

import io
import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from PIL import Image

from sogni_intelligence.media.ffmpeg import ffprobe_exe
from sogni_intelligence.media.signing import UrlSigner
from sogni_intelligence.media.store import AssetRecord, AssetStore
from sogni_intelligence.store.db import Database
from sogni_intelligence.tools.base import ToolContext
from sogni_intelligence.tools.media_context import MediaContext


def model_device() -> str:
    """The torch device the tiny local-model tests run on: `SOGNI_TEST_MODEL_DEVICE` (e.g.
    cuda:0), cpu by default, so the same tests check the models on a GPU."""
    return os.environ.get("SOGNI_TEST_MODEL_DEVICE", "cpu")


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[AssetStore]:
    db = Database(f"sqlite:///{tmp_path / 'tools.sqlite'}")
    await db.create_all()
    yield AssetStore(db, tmp_path / "media", UrlSigner(b"k" * 32, "http://media.test", 3600))
    await db.close()


@pytest.fixture
def progress_log() -> list[tuple[float, str | None]]:
    return []


@pytest.fixture
def ctx(store: AssetStore, progress_log: list) -> ToolContext:
    return ToolContext(
        owner="key_test",
        media=MediaContext(),
        store=store,
        progress=lambda fraction, message=None: progress_log.append((fraction, message)),
    )


async def upload_image(
    ctx: ToolContext, size: tuple[int, int] = (320, 240), color: str = "orange"
) -> AssetRecord:
    """Store a real PNG as an upload of the context (index -1, -2, ...)."""
    out = io.BytesIO()
    image = Image.new("RGB", size, color)
    for x in range(0, size[0], 20):  # some structure, so resampling and analysis see edges
        for y in range(size[1]):
            image.putpixel((x, y), (20, 40, 200))
    image.save(out, "PNG")
    record = await ctx.store.put_bytes(ctx.owner, out.getvalue())
    ctx.media.add_upload(record)
    return record


def ffprobe(path: Path) -> dict[str, Any]:
    """ffprobe's JSON report of a file (the independent check that an output decodes)."""
    out = subprocess.run(
        [
            ffprobe_exe(),
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            str(path),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)


async def asset_file(ctx: ToolContext, result: dict[str, Any], index: int = 0) -> Path:
    """The stored file behind output asset `index` of a successful result."""
    assert result["ok"] is True, result
    record = await ctx.store.get(result["output_assets"][index]["asset_id"], ctx.owner)
    assert record is not None
    return await ctx.store.local_path(record)
