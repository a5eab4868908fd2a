"""Where the asset store keeps file contents, keyed by sha256: a local directory (one host, or
a directory every host mounts) or an S3-compatible bucket (any number of hosts). Tools read
media through local paths (ffmpeg, Pillow), so the bucket is fronted by a local read-through
cache filled on first use."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sogni_intelligence.config import Settings


class Blobs(Protocol):
    async def put(self, source: Path, sha256: str) -> int:
        """Take the file at `source` (whose hash is `sha256`; it is moved or removed) and
        return its size."""
        ...

    async def local_path(self, sha256: str) -> Path:
        """A local path holding the blob; a path that does not exist when there is no blob."""
        ...

    async def check(self) -> None:
        """Raise a clear error at startup when the blobs cannot be reached."""
        ...


class LocalBlobs:
    """Blobs in `<root>/blobs/<first two hex>/<sha256>` (the layout the store always had)."""

    def __init__(self, root: Path) -> None:
        self._root = root / "blobs"
        self._root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self._root / sha256[:2] / sha256

    async def put(self, source: Path, sha256: str) -> int:
        return await asyncio.to_thread(_move_in, source, self.path(sha256))

    async def local_path(self, sha256: str) -> Path:
        return self.path(sha256)

    async def check(self) -> None:
        return None


class S3Blobs:
    """Blobs as objects `<prefix><first two hex>/<sha256>` in an S3-compatible bucket; what
    this host stored or read is kept in `cache` (same layout as LocalBlobs) so tools get a
    path and each host downloads a blob at most once."""

    def __init__(self, client: Any, bucket: str, prefix: str, cache: Path) -> None:
        self._client = client  # a boto3 S3 client: thread-safe, used from worker threads
        self._bucket = bucket
        self._prefix = prefix
        self._cache = LocalBlobs(cache)
        self._fetching: dict[str, asyncio.Future[None]] = {}

    @classmethod
    def from_settings(cls, settings: Settings, cache: Path) -> S3Blobs:
        """A client for the configured bucket; credentials come from the standard AWS sources
        (environment, shared config files, instance roles)."""
        try:
            import boto3
        except ImportError as exc:
            raise RuntimeError(
                "SOGNI_MEDIA_STORE=s3 needs boto3: install the server with its [s3] extra"
            ) from exc
        client = boto3.client(
            "s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region
        )
        assert settings.s3_bucket is not None  # checked by Settings
        return cls(client, settings.s3_bucket, settings.s3_prefix, cache)

    def key(self, sha256: str) -> str:
        return f"{self._prefix}{sha256[:2]}/{sha256}"

    async def put(self, source: Path, sha256: str) -> int:
        """Upload unless the bucket already has this content, then keep the file as cached."""
        if not await asyncio.to_thread(self._exists, sha256):
            await asyncio.to_thread(
                self._client.upload_file, str(source), self._bucket, self.key(sha256)
            )
        return await self._cache.put(source, sha256)

    async def local_path(self, sha256: str) -> Path:
        """The cached copy, downloaded first if needed; concurrent readers of one blob share
        one download (a reader that gives up does not cancel it for the others)."""
        path = self._cache.path(sha256)
        if path.is_file():
            return path
        fetching = self._fetching.get(sha256)
        if fetching is None:
            fetching = asyncio.ensure_future(asyncio.to_thread(self._download, sha256, path))
            self._fetching[sha256] = fetching
            fetching.add_done_callback(lambda _: self._fetching.pop(sha256, None))
        await asyncio.shield(fetching)
        return path

    async def check(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            await asyncio.to_thread(self._client.head_bucket, Bucket=self._bucket)
        except (BotoCoreError, ClientError) as exc:  # credentials, connection, no bucket
            raise RuntimeError(
                f"the media bucket {self._bucket!r} cannot be reached: {exc}"
            ) from exc

    def _exists(self, sha256: str) -> bool:
        try:
            self._client.head_object(Bucket=self._bucket, Key=self.key(sha256))
        except self._client.exceptions.ClientError as exc:
            if _missing(exc):
                return False
            raise
        return True

    def _download(self, sha256: str, path: Path) -> None:
        """Fetch into a temporary file beside `path` and rename it into place, so a reader
        never sees a partial blob; a missing object leaves `path` absent."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        os.close(handle)
        try:
            self._client.download_file(self._bucket, self.key(sha256), name)
        except self._client.exceptions.ClientError as exc:
            os.unlink(name)
            if _missing(exc):
                return
            raise
        except BaseException:
            os.unlink(name)
            raise
        os.replace(name, path)


def _missing(exc: Any) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound")


def _move_in(source: Path, target: Path) -> int:
    if target.exists():
        source.unlink()
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
    return target.stat().st_size
