"""The asset store on an S3-compatible bucket, served by a real S3 server process (moto's
server, over HTTP on a free port): uploads once per content, a host with an empty cache reads
through it, a missing object reads as a missing file, and a signed URL made by one app is
served by another that shares only the database and the bucket."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import ValidationError

from sogni_intelligence.api.app import create_app
from sogni_intelligence.config import ModelConfig, Settings
from sogni_intelligence.media.blobs import S3Blobs
from sogni_intelligence.media.signing import UrlSigner
from sogni_intelligence.media.store import AssetStore
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.keys import KeyStore
from tests.integration.media.conftest import make_png

if importlib.util.find_spec("boto3") is None or importlib.util.find_spec("moto") is None:
    pytest.skip(
        "boto3 or moto[server] is not installed (the [s3] and test extras)", allow_module_level=True
    )

import boto3

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test-access",
    "AWS_SECRET_ACCESS_KEY": "test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
PREFIX = "media/"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """A moto S3 server in its own process, with the AWS credentials every client here uses."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    saved = {name: os.environ.get(name) for name in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the moto S3 server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def bucket(endpoint: str) -> str:
    name = f"assets-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return name


@dataclass
class Calls:
    uploads: int = 0
    downloads: int = 0


def _counted_client(endpoint: str, calls: Calls) -> Any:
    """A real client whose transfers are counted (to see what is skipped or cached)."""
    client = boto3.client("s3", endpoint_url=endpoint)
    upload, download = client.upload_file, client.download_file

    def counted(method: Callable[..., None], field: str) -> Callable[..., None]:
        def call(*args: Any, **kwargs: Any) -> None:
            setattr(calls, field, getattr(calls, field) + 1)
            method(*args, **kwargs)

        return call

    client.upload_file = counted(upload, "uploads")
    client.download_file = counted(download, "downloads")
    return client


@pytest_asyncio.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'assets.sqlite'}")
    await database.create_all()
    yield database
    await database.close()


def _store(db: Database, root: Path, client: Any, bucket: str) -> AssetStore:
    blobs = S3Blobs(client, bucket, PREFIX, root / "cache")
    return AssetStore(db, root, UrlSigner(b"s" * 32, "http://assets", 3600), blobs)


def _cached(root: Path) -> list[Path]:
    return sorted(p for p in (root / "cache").rglob("*") if p.is_file())


async def test_content_is_uploaded_once_and_kept_in_the_local_cache(
    tmp_path: Path, db: Database, endpoint: str, bucket: str
) -> None:
    calls = Calls()
    store = _store(db, tmp_path / "a", _counted_client(endpoint, calls), bucket)
    png = make_png()
    sha = hashlib.sha256(png).hexdigest()

    first = await store.put_bytes("key_a", png, tool="test")
    second = await store.put_bytes("key_b", png)
    assert first.sha256 == second.sha256 == sha and first.id != second.id
    assert first.size_bytes == len(png)
    assert calls.uploads == 1  # the second put found the object and skipped the upload

    listed = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=bucket)
    assert [(o["Key"], o["Size"]) for o in listed["Contents"]] == [
        (f"{PREFIX}{sha[:2]}/{sha}", len(png))
    ]
    # The storing host keeps what it stored: reading it back downloads nothing.
    assert (await store.local_path(first)).read_bytes() == png
    assert calls.downloads == 0
    assert list((tmp_path / "a" / "tmp").iterdir()) == []


async def test_another_host_reads_through_its_empty_cache_once(
    tmp_path: Path, db: Database, endpoint: str, bucket: str
) -> None:
    writer = _store(db, tmp_path / "a", boto3.client("s3", endpoint_url=endpoint), bucket)
    png = make_png((80, 40), "navy")
    record = await writer.put_bytes("key_a", png)

    calls = Calls()
    reader = _store(db, tmp_path / "b", _counted_client(endpoint, calls), bucket)
    assert _cached(tmp_path / "b") == []
    found = await reader.get(record.id)
    assert found is not None
    path = await reader.local_path(found)
    assert path.read_bytes() == png
    assert (await reader.local_path(found)) == path
    assert calls.downloads == 1
    assert _cached(tmp_path / "b") == [path]  # no partial download left beside it


async def test_concurrent_readers_share_one_download(
    tmp_path: Path, db: Database, endpoint: str, bucket: str
) -> None:
    client = boto3.client("s3", endpoint_url=endpoint)
    record = await _store(db, tmp_path / "a", client, bucket).put_bytes("key_a", make_png())
    calls = Calls()
    reader = _store(db, tmp_path / "b", _counted_client(endpoint, calls), bucket)
    paths = await asyncio.gather(*(reader.local_path(record) for _ in range(6)))
    assert len(set(paths)) == 1 and paths[0].is_file()
    assert calls.downloads == 1


async def test_an_unreachable_bucket_is_a_clear_startup_error(
    tmp_path: Path, db: Database, endpoint: str, bucket: str
) -> None:
    client = boto3.client("s3", endpoint_url=endpoint)
    await _store(db, tmp_path / "a", client, bucket).blobs.check()
    with pytest.raises(RuntimeError, match="'no-such-bucket' cannot be reached"):
        await _store(db, tmp_path / "b", client, "no-such-bucket").blobs.check()


async def test_a_missing_object_reads_as_a_missing_file(
    tmp_path: Path, db: Database, endpoint: str, bucket: str
) -> None:
    client = boto3.client("s3", endpoint_url=endpoint)
    record = await _store(db, tmp_path / "a", client, bucket).put_bytes("key_a", make_png())
    client.delete_object(Bucket=bucket, Key=f"{PREFIX}{record.sha256[:2]}/{record.sha256}")

    reader = _store(db, tmp_path / "b", client, bucket)
    path = await reader.local_path(record)
    assert not path.exists()
    assert _cached(tmp_path / "b") == []


def test_the_s3_store_needs_a_bucket() -> None:
    with pytest.raises(ValidationError, match="s3_bucket"):
        Settings(media_store="s3")
    with pytest.raises(ValidationError, match="url_signing_key"):
        Settings(url_signing_key="too short")


async def test_a_signed_url_is_served_by_a_replica_sharing_only_database_and_bucket(
    tmp_path: Path, endpoint: str, bucket: str
) -> None:
    base = "http://media.test"
    shared = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'shared.sqlite'}",
        "models": [ModelConfig(id="up", engine="upstream", base_url="http://127.0.0.1:9/v1")],
        "default_model": "up",
        "public_base_url": base,
        "media_store": "s3",
        "s3_bucket": bucket,
        "s3_prefix": PREFIX,
        "s3_endpoint_url": endpoint,
        "url_signing_key": "a-key-every-replica-is-given-" + "x" * 16,
    }
    first, second = (Settings(data_dir=tmp_path / n, **shared) for n in ("one", "two"))
    for settings in (first, second):
        settings.ensure_data_dir()
    db = Database(first.resolved_database_url)
    await db.create_all()
    key, _ = await KeyStore(db).create("a")
    await db.close()
    png = make_png((96, 64), "olive")

    app = create_app(first)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=base) as c,
    ):
        response = await c.post(
            "/v1/media", content=png, headers={"Authorization": f"Bearer {key}"}
        )
    assert response.status_code == 201, response.text
    url = response.json()["data"]["asset"]["url"]

    assert _cached(tmp_path / "two" / "media") == []
    app = create_app(second)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=base) as c,
    ):
        served = await c.get(url)
        ranged = await c.get(url, headers={"Range": "bytes=0-7"})
        forged = await c.get(url.replace("sig=", "sig=0"))
    assert served.status_code == 200 and served.content == png
    assert served.headers["content-type"] == "image/png"
    assert ranged.status_code == 206 and ranged.content == png[:8]
    assert forged.status_code in (401, 403)
    assert [p.name for p in _cached(tmp_path / "two" / "media")] == [
        hashlib.sha256(png).hexdigest()
    ]
