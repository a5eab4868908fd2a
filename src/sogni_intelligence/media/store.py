"""The asset store: content-addressed files in the data directory plus one metadata row per
asset. Every file the server makes or receives goes through here."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import secrets
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import bindparam, insert, select

from sogni_intelligence.config import Settings
from sogni_intelligence.errors import ServiceError
from sogni_intelligence.media.blobs import Blobs, LocalBlobs, S3Blobs
from sogni_intelligence.media.ffmpeg import MediaProcessError, probe, summarize
from sogni_intelligence.media.signing import UrlSigner, load_secret
from sogni_intelligence.media.sniff import Sniffed, sniff
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.models import Asset, utcnow

ASSET_ID = re.compile(r"^ast_[0-9a-f]{24}$")


@dataclass(frozen=True)
class AssetRecord:
    id: str
    owner: str
    sha256: str
    mime: str
    kind: str
    size_bytes: int
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    fps: float | None = None
    tool: str | None = None
    backend: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None

    def describe(self) -> dict[str, Any]:
        """The public, JSON-ready facts about the asset (no URL: that is signed per use)."""
        out: dict[str, Any] = {
            "asset_id": self.id,
            "type": self.kind,
            "mime_type": self.mime,
            "size_bytes": self.size_bytes,
        }
        for key, value in (
            ("width", self.width),
            ("height", self.height),
            ("duration_seconds", self.duration_s),
            ("fps", self.fps),
        ):
            if value is not None:
                out[key] = value
        if self.meta:
            out["metadata"] = self.meta
        return out


@dataclass(frozen=True)
class MadeFacts:
    """What this server told its encoder to make (Pillow's save or an ffmpeg run that ended
    well proves the file whole): storing the file then trusts these instead of decoding it
    again to learn them."""

    width: int
    height: int
    duration_s: float | None = None
    fps: float | None = None


_ASSETS = Asset.__table__
#: Built once: building a statement costs more than SQLite takes to run it.
_BY_ID = select(_ASSETS).where(_ASSETS.c.id.in_(bindparam("ids", expanding=True)))


def _record(row: Any) -> AssetRecord:
    """An asset from its plain row."""
    created = row.created_at
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return AssetRecord(
        id=row.id,
        owner=row.owner,
        sha256=row.sha256,
        mime=row.mime,
        kind=row.kind,
        size_bytes=row.size_bytes,
        width=row.width,
        height=row.height,
        duration_s=row.duration_s,
        fps=row.fps,
        tool=row.tool,
        backend=row.backend,
        meta=dict(row.meta or {}),
        created_at=created,
    )


class AssetStore:
    def __init__(
        self, db: Database, root: Path, signer: UrlSigner, blobs: Blobs | None = None
    ) -> None:
        self._db = db
        self.root = root
        self.signer = signer
        self.blobs = blobs if blobs is not None else LocalBlobs(root)
        (root / "tmp").mkdir(parents=True, exist_ok=True)

    @property
    def db(self) -> Database:
        """The database of the asset rows (other per-key tables that point at assets share it)."""
        return self._db

    @classmethod
    def from_settings(cls, db: Database, settings: Settings) -> AssetStore:
        """The store every process of one deployment shares: same blobs (a directory or a
        bucket), same URL key."""
        key = settings.url_signing_key
        signer = UrlSigner(
            key.get_secret_value().encode()
            if key is not None
            else load_secret(settings.data_dir / "url-signing.key"),
            settings.resolved_public_base_url,
            settings.media_url_ttl_s,
        )
        root = settings.data_dir / "media"
        if settings.media_store == "s3":
            return cls(db, root, signer, S3Blobs.from_settings(settings, root / "cache"))
        return cls(db, root, signer)

    def scratch_dir(self) -> Path:
        """A private working directory on the same filesystem (so results move, not copy)."""
        return Path(tempfile.mkdtemp(dir=self.root / "tmp"))

    async def put_bytes(
        self,
        owner: str,
        data: bytes,
        *,
        tool: str | None = None,
        backend: str | None = None,
        meta: dict[str, Any] | None = None,
        made: MadeFacts | None = None,
    ) -> AssetRecord:
        """Store `data`, hashed from memory as it is written (one pass, one file)."""
        path, sha256 = await asyncio.to_thread(self._write_scratch, data)
        try:
            return await self._add(owner, path, sha256, tool, backend, meta, made)
        finally:
            path.unlink(missing_ok=True)

    async def put_file(
        self,
        owner: str,
        path: Path,
        *,
        tool: str | None = None,
        backend: str | None = None,
        meta: dict[str, Any] | None = None,
        made: MadeFacts | None = None,
    ) -> AssetRecord:
        """Store the file at `path` (it is moved into the store) and describe it."""
        sha256 = await asyncio.to_thread(_sha256, path)
        return await self._add(owner, path, sha256, tool, backend, meta, made)

    def _write_scratch(self, data: bytes) -> tuple[Path, str]:
        handle, name = tempfile.mkstemp(dir=self.root / "tmp")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        return Path(name), hashlib.sha256(data).hexdigest()

    async def _add(
        self,
        owner: str,
        path: Path,
        sha256: str,
        tool: str | None,
        backend: str | None,
        meta: dict[str, Any] | None,
        made: MadeFacts | None,
    ) -> AssetRecord:
        """Move the file at `path` (whose hash is `sha256`) into place and add its row; its
        facts are `made`, or read by decoding it (which also proves that it decodes)."""
        with path.open("rb") as handle:
            sniffed = sniff(handle.read(64))
        if sniffed is None:
            raise ServiceError(
                "unsupported or unrecognised media type", 400, "invalid_request_error"
            )
        facts = asdict(made) if made is not None else await _inspect(path, sniffed)
        size = await self.blobs.put(path, sha256)
        values: dict[str, Any] = {
            "mime": sniffed.mime,
            "kind": sniffed.kind,
            "size_bytes": size,
            "tool": tool,
            "backend": backend,
            **facts,
        }
        return await self._insert(owner, sha256, meta, values)

    async def put_checked_bytes(
        self, owner: str, data: bytes, *, mime: str, kind: str, tool: str, meta: dict[str, Any]
    ) -> AssetRecord:
        """Store a file that is not media (a LoRA's weights) whose bytes the caller has
        already checked, under the `kind` and `mime` it proved them to be."""
        path, sha256 = await asyncio.to_thread(self._write_scratch, data)
        try:
            size = await self.blobs.put(path, sha256)
        finally:
            path.unlink(missing_ok=True)
        values = {"mime": mime, "kind": kind, "size_bytes": size, "tool": tool}
        return await self._insert(owner, sha256, meta, values)

    async def _insert(
        self, owner: str, sha256: str, meta: dict[str, Any] | None, facts: dict[str, Any]
    ) -> AssetRecord:
        values: dict[str, Any] = {
            "id": "ast_" + secrets.token_hex(12),
            "owner": owner,
            "sha256": sha256,
            "meta": meta or {},
            "created_at": utcnow(),
            **facts,
        }
        await self._db.write(lambda conn: conn.execute(insert(_ASSETS).values(**values)))
        return AssetRecord(**values)

    async def get(self, asset_id: str, owner: str | None = None) -> AssetRecord | None:
        """The asset, or None when it does not exist or (with `owner`) belongs to another key."""
        if not ASSET_ID.match(asset_id):
            return None
        rows = await self._db.read(_BY_ID, {"ids": [asset_id]})
        row = rows[0] if rows else None
        if row is None or (owner is not None and row.owner != owner):
            return None
        return _record(row)

    async def get_many(
        self, asset_ids: list[str], owner: str | None = None
    ) -> dict[str, AssetRecord]:
        """The assets that exist (and, with `owner`, belong to that key), by id, in one read."""
        wanted = [a for a in dict.fromkeys(asset_ids) if ASSET_ID.match(a)]
        if not wanted:
            return {}
        rows = await self._db.read(_BY_ID, {"ids": wanted})
        found = {row.id: _record(row) for row in rows}
        return {i: r for i, r in found.items() if owner is None or r.owner == owner}

    async def local_path(self, record: AssetRecord) -> Path:
        """A local file with the asset's bytes (fetched into the cache first when the blobs
        live elsewhere); the path does not exist when the blob is missing."""
        return await self.blobs.local_path(record.sha256)

    async def intact(self, record: AssetRecord) -> bool:
        """Whether the stored bytes are still there with the size and hash the row names."""
        path = await self.local_path(record)
        if not path.is_file() or path.stat().st_size != record.size_bytes:
            return False
        return await asyncio.to_thread(_sha256, path) == record.sha256

    def url(self, record: AssetRecord) -> str:
        return self.signer.url(f"/v1/media/{record.id}")

    def public(self, record: AssetRecord) -> dict[str, Any]:
        return {**record.describe(), "url": self.url(record)}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


async def _inspect(path: Path, sniffed: Sniffed) -> dict[str, Any]:
    """Decode enough of the file to prove it is what it claims and read its dimensions."""
    if sniffed.kind == "image":
        return await asyncio.to_thread(_inspect_image, path)
    try:
        info = summarize(await probe(path))
    except MediaProcessError as exc:
        raise ServiceError(
            f"the {sniffed.kind} file does not decode", 400, "invalid_request_error"
        ) from exc
    if sniffed.kind == "video" and not info.get("width"):
        raise ServiceError("the video file has no video stream", 400, "invalid_request_error")
    if sniffed.kind == "audio" and not info.get("sample_rate"):
        raise ServiceError("the audio file has no audio stream", 400, "invalid_request_error")
    return {
        "width": info.get("width"),
        "height": info.get("height"),
        "duration_s": info.get("duration_seconds"),
        "fps": info.get("fps"),
    }


def _inspect_image(path: Path) -> dict[str, Any]:
    try:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            image.load()
            return {"width": image.width, "height": image.height}
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ServiceError("the image file does not decode", 400, "invalid_request_error") from exc


def image_bytes(image: Image.Image, fmt: str, quality: int = 92) -> bytes:
    """Encode a Pillow image as png, jpg/jpeg or webp."""
    out = io.BytesIO()
    fmt = fmt.lower()
    if fmt in ("jpg", "jpeg"):
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        rgb.save(out, "JPEG", quality=quality)
    elif fmt == "webp":
        image.save(out, "WEBP", quality=quality)
    else:
        image.save(out, "PNG", compress_level=1)
    return out.getvalue()
