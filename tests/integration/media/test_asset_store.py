"""The asset store on a real SQLite file and data directory: content addressing, the decode
check for files from outside, and the facts a maker hands in for the files it encoded."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from PIL import Image

from sogni_intelligence.errors import ServiceError
from sogni_intelligence.media.signing import UrlSigner
from sogni_intelligence.media.store import AssetStore, MadeFacts, image_bytes
from sogni_intelligence.store.db import Database
from tests.integration.media.conftest import Samples, make_png


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[AssetStore]:
    db = Database(f"sqlite:///{tmp_path / 'assets.sqlite'}")
    await db.create_all()
    yield AssetStore(db, tmp_path / "media", UrlSigner(b"s" * 32, "http://assets", 3600))
    await db.close()


def _scratch(store: AssetStore) -> list[Path]:
    return list((store.root / "tmp").iterdir())


async def test_bytes_are_stored_under_their_hash_with_no_scratch_left(store: AssetStore) -> None:
    png = make_png((40, 30))
    record = await store.put_bytes("key_owner", png, tool="test")
    assert record.sha256 == hashlib.sha256(png).hexdigest()
    assert (await store.local_path(record)).read_bytes() == png
    assert (record.kind, record.mime, record.size_bytes) == ("image", "image/png", len(png))
    assert (record.width, record.height) == (40, 30)
    again = await store.put_bytes("key_owner", png)
    assert again.id != record.id and again.sha256 == record.sha256
    assert _scratch(store) == []


async def test_a_file_from_outside_that_does_not_decode_is_refused(store: AssetStore) -> None:
    truncated = make_png((64, 48))[:-40]
    with pytest.raises(ServiceError, match="does not decode"):
        await store.put_bytes("key_owner", truncated)
    with pytest.raises(ServiceError, match="unrecognised"):
        await store.put_bytes("key_owner", b"plain text, not media")
    assert _scratch(store) == []
    assert list((store.root / "blobs").iterdir()) == []


async def test_made_facts_describe_an_encoded_image(store: AssetStore) -> None:
    data = image_bytes(Image.new("RGB", (96, 64), "orange"), "jpg")
    record = await store.put_bytes("key_owner", data, made=MadeFacts(96, 64))
    assert (record.mime, record.width, record.height) == ("image/jpeg", 96, 64)
    with Image.open(io.BytesIO((await store.local_path(record)).read_bytes())) as stored:
        assert stored.size == (96, 64)


async def test_a_moved_video_file_is_probed_unless_its_maker_says_what_it_is(
    store: AssetStore, samples: Samples, tmp_path: Path
) -> None:
    probed_path, made_path = tmp_path / "probed.mp4", tmp_path / "made.mp4"
    probed_path.write_bytes(samples.mp4)
    made_path.write_bytes(samples.mp4)
    probed = await store.put_file("key_owner", probed_path)
    assert not probed_path.exists()
    assert (probed.kind, probed.width, probed.height, probed.fps) == ("video", 64, 48, 10.0)
    assert probed.duration_s == pytest.approx(0.5, abs=0.05)
    made = MadeFacts(64, 48, duration_s=probed.duration_s, fps=10.0)
    told = await store.put_file("key_owner", made_path, made=made)
    assert not made_path.exists() and told.sha256 == probed.sha256
    assert (told.width, told.height, told.duration_s, told.fps) == (
        64,
        48,
        probed.duration_s,
        10.0,
    )
