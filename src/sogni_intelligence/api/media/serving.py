"""What the media routes do: serve assets, take uploads, hand out upload and download URLs.

Error bodies of these routes use the Sogni REST shape that the SDK reads on its non-chat routes,
`{"status": "error", "message", "errorCode": <HTTP status>}`, and carry the OpenAI-style
`error` object of the rest of this server next to it, so either kind of client finds its fields.
"""

from __future__ import annotations

import email.message
import re
import shutil
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse, Response
from pydantic import ValidationError

from sogni_intelligence.api.auth import presented_key, require_key
from sogni_intelligence.api.media.protocol import (
    CONTENT_TYPES,
    AssetData,
    AssetResponse,
    DownloadUrlData,
    DownloadUrlResponse,
    MediaFamily,
    SlotQuery,
    UploadedData,
    UploadedResponse,
    UploadUrlData,
    UploadUrlResponse,
)
from sogni_intelligence.api.state import server_of
from sogni_intelligence.config import Settings
from sogni_intelligence.errors import ServiceError, invalid_request
from sogni_intelligence.media.sniff import EXTENSIONS, sniff
from sogni_intelligence.media.store import ASSET_ID, AssetRecord, AssetStore
from sogni_intelligence.store.keys import KeyInfo
from sogni_intelligence.store.upload_slots import SlotKey, UploadSlotStore

SLOT_ID = re.compile(r"^upl_(image|video|audio)_[0-9a-f]{24}$")
#: Room for multipart framing and part headers on top of the file size limit.
FORM_OVERHEAD_BYTES = 64 * 1024
_MAX_PART_HEADERS = 16 * 1024
_MAX_TEXT_FIELDS = 32
_MAX_TEXT_FIELD_BYTES = 8 * 1024


# --- errors -----------------------------------------------------------------------------------


def _not_found(what: str = "media") -> ServiceError:
    return ServiceError(f"No such {what}.", 404, "not_found_error", "not_found")


def _too_large(limit: int) -> ServiceError:
    return ServiceError(
        f"The upload is larger than {limit} bytes.",
        413,
        "invalid_request_error",
        "upload_too_large",
    )


def bad_signature() -> ServiceError:
    return ServiceError(
        "The URL's signature is missing, invalid or expired; ask for a new URL.",
        403,
        "permission_error",
        "invalid_signature",
    )


def parse_query(model: type[SlotQuery], request: Request) -> Any:
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first.get("loc") or ()
        param = str(loc[0]) if loc else None
        message = str(first.get("msg", "invalid query")).removeprefix("Value error, ")
        if first.get("type") == "missing" and param:
            message = f"the query parameter {param!r} is required"
        raise invalid_request(message, param) from exc


# --- app state --------------------------------------------------------------------------------


def asset_store(request: Request) -> AssetStore:
    return server_of(request).assets


def settings_of(request: Request) -> Settings:
    return server_of(request).settings


def _slots(request: Request) -> UploadSlotStore:
    return UploadSlotStore(server_of(request).db)


# --- GET /v1/media/{asset_id} -----------------------------------------------------------------


async def serve_asset(request: Request, asset_id: str) -> Response:
    """The asset's bytes, for a valid signature or for the key that owns it (Range works)."""
    if not ASSET_ID.match(asset_id):
        raise _not_found()  # never looked up, never a path
    store = asset_store(request)
    exp = request.query_params.get("exp")
    sig = request.query_params.get("sig")
    record: AssetRecord | None
    if (exp or sig) and store.signer.verify("GET", f"/v1/media/{asset_id}", exp, sig):
        record = await store.get(asset_id)
        max_age = max(0, int(exp or 0) - int(time.time()))
    elif presented_key(request) is not None:
        key = await require_key(request)
        record = await store.get(asset_id, owner=key.id)
        max_age = settings_of(request).media_url_ttl_s
    else:
        raise bad_signature()
    if record is None:
        raise _not_found()
    path = await store.local_path(record)
    if not path.is_file():
        raise _not_found()
    extension = EXTENSIONS.get(record.mime, "bin")
    return FileResponse(
        path,
        media_type=record.mime,
        filename=f"{record.id}.{extension}",
        content_disposition_type="inline",
        headers={
            "Cache-Control": f"private, max-age={max_age}",
            "X-Content-Type-Options": "nosniff",
        },
    )


# --- request bodies ---------------------------------------------------------------------------


class FormFileReader:
    """Pulls the bytes of one field out of a `multipart/form-data` body as it streams in, so
    the body is never held in memory. Other fields are skipped."""

    def __init__(
        self,
        boundary: str,
        field: str,
        on_file: Callable[[dict[str, str]], None] | None = None,
    ) -> None:
        self._delimiter = b"\r\n--" + boundary.encode("latin-1")
        self._field = field
        self._buffer = b"\r\n"  # lets the opening boundary match the same delimiter
        self._state = "preamble"
        self._capturing = False
        self.found = False
        #: The small text fields before the file (a presigned form's policy and signature),
        #: handed to `on_file` as the file's part begins, so it can refuse the upload before
        #: a byte of it is kept.
        self.fields: dict[str, str] = {}
        self._on_file = on_file
        self._text: bytearray | None = None
        self._text_name = ""

    def feed(self, chunk: bytes) -> list[bytes]:
        """The pieces of the wanted field's content contained in `chunk` (plus what was held)."""
        self._buffer += chunk
        out: list[bytes] = []
        keep = len(self._delimiter) - 1
        while True:
            if self._state == "preamble":
                at = self._buffer.find(self._delimiter)
                if at < 0:
                    self._buffer = self._buffer[-keep:]
                    return out
                self._buffer = self._buffer[at + len(self._delimiter) :]
                self._state = "boundary"
            elif self._state == "boundary":
                line_end = self._buffer.find(b"\r\n")
                if self._buffer.startswith(b"--"):
                    self._state = "end"
                    continue
                if line_end < 0:
                    if len(self._buffer) > _MAX_PART_HEADERS:
                        raise invalid_request("malformed multipart body")
                    return out
                self._buffer = self._buffer[line_end + 2 :]  # transport padding, then CRLF
                self._state = "headers"
            elif self._state == "headers":
                at = self._buffer.find(b"\r\n\r\n")
                if at < 0:
                    if len(self._buffer) > _MAX_PART_HEADERS:
                        raise invalid_request("malformed multipart body: part headers too long")
                    return out
                name = _part_field_name(self._buffer[:at])
                self._buffer = self._buffer[at + 4 :]
                self._capturing = name == self._field and not self.found
                if self._capturing and self._on_file is not None:
                    self._on_file(self.fields)
                elif not self._capturing and name and len(self.fields) < _MAX_TEXT_FIELDS:
                    self._text, self._text_name = bytearray(), name
                self._state = "body"
            elif self._state == "body":
                at = self._buffer.find(self._delimiter)
                if at < 0:
                    ready = len(self._buffer) - keep
                    if ready > 0:
                        if self._capturing:
                            out.append(self._buffer[:ready])
                        else:
                            self._keep_text(self._buffer[:ready])
                        self._buffer = self._buffer[ready:]
                    return out
                if self._capturing:
                    out.append(self._buffer[:at])
                    self.found = True
                    self._capturing = False
                elif self._text is not None:
                    self._keep_text(self._buffer[:at])
                    self.fields[self._text_name] = self._text.decode("utf-8", "replace")
                    self._text = None
                self._buffer = self._buffer[at + len(self._delimiter) :]
                self._state = "boundary"
            else:  # end: the epilogue is ignored
                self._buffer = b""
                return out

    def _keep_text(self, piece: bytes) -> None:
        if self._text is None:
            return
        self._text += piece
        if len(self._text) > _MAX_TEXT_FIELD_BYTES:
            raise invalid_request(f"the form field {self._text_name!r} is too long")


def _part_field_name(raw_headers: bytes) -> str | None:
    message = email.message.Message()
    for line in raw_headers.decode("utf-8", "replace").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            message[name.strip()] = value.strip()
    value = message.get_param("name", header="content-disposition")
    return value if isinstance(value, str) else None


def form_boundary(content_type: str) -> str | None:
    """The boundary of a `multipart/form-data` Content-Type, or None for any other type."""
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_type() != "multipart/form-data":
        return None
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not 1 <= len(boundary) <= 70:
        raise invalid_request("multipart/form-data needs a boundary of 1 to 70 characters")
    return boundary


async def receive_upload(
    request: Request,
    dest: Path,
    limit: int,
    *,
    allow_form: bool,
    on_file: Callable[[dict[str, str]], None] | None = None,
) -> None:
    """Stream the request body (or its `file` form field) into `dest`, at most `limit` bytes.
    `on_file` sees a form's text fields before the file's first byte is written."""
    boundary = form_boundary(request.headers.get("content-type", "")) if allow_form else None
    reader = FormFileReader(boundary, "file", on_file) if boundary else None
    raw_limit = limit + FORM_OVERHEAD_BYTES if reader else limit
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > raw_limit:
        raise _too_large(limit)
    received = written = 0
    with dest.open("wb") as out:
        async for chunk in request.stream():
            received += len(chunk)
            if received > raw_limit:
                raise _too_large(limit)
            for piece in reader.feed(chunk) if reader else (chunk,):
                written += len(piece)
                if written > limit:
                    raise _too_large(limit)
                out.write(piece)
    if reader is not None and not reader.found:
        raise invalid_request("the multipart body has no complete 'file' field", "file")
    if written == 0:
        raise invalid_request("the upload is empty")


@asynccontextmanager
async def received_upload(
    request: Request,
    *,
    allow_form: bool,
    on_file: Callable[[dict[str, str]], None] | None = None,
) -> AsyncIterator[Path]:
    """The upload in a scratch file, removed when the context ends (kept or not)."""
    scratch = asset_store(request).scratch_dir()
    try:
        path = scratch / "upload"
        limit = settings_of(request).max_upload_bytes
        await receive_upload(request, path, limit, allow_form=allow_form, on_file=on_file)
        yield path
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


async def keep_upload(
    request: Request,
    path: Path,
    owner: str,
    family: MediaFamily | None = None,
    meta: dict[str, Any] | None = None,
) -> AssetRecord:
    """Store a received upload as the owner's asset, if its bytes are of `family`."""
    if family is not None:
        with path.open("rb") as handle:
            sniffed = sniff(handle.read(64))
        if sniffed is not None and sniffed.kind != family:
            raise invalid_request(
                f"this upload URL takes {family} files, but the bytes are {sniffed.mime}"
            )
    return await asset_store(request).put_file(owner, path, meta=meta)


# --- POST /v1/media ---------------------------------------------------------------------------


async def upload_direct(request: Request, key: KeyInfo) -> AssetResponse:
    async with received_upload(request, allow_form=True) as path:
        record = await keep_upload(request, path, key.id)
    return AssetResponse(data=AssetData(asset=asset_store(request).public(record)))


# --- upload slots -----------------------------------------------------------------------------


def slot_family(query: SlotQuery, content_type: str | None, default: MediaFamily | None) -> str:
    if content_type is not None:
        return CONTENT_TYPES[content_type]
    if default is not None:
        return default
    for prefix, family in (("referenceAudio", "audio"), ("referenceVideo", "video")):
        if query.type.startswith(prefix):
            return family
    raise invalid_request("contentType is required for this type", "contentType")


async def new_slot(
    request: Request, key: KeyInfo, query: Any, family: MediaFamily | None
) -> tuple[str, str]:
    """Make (or replace) the slot for (key, job, type, image id): its id and kind of media."""
    kind = slot_family(query, query.content_type, family)
    slot_key = SlotKey(key.id, query.job_id, query.type, query.image_id)
    return await _slots(request).replace(slot_key, kind), kind


async def create_upload_url(
    request: Request, key: KeyInfo, query: Any, family: MediaFamily | None
) -> UploadUrlResponse:
    """A new slot and a signed PUT URL for it."""
    slot_id, _ = await new_slot(request, key, query, family)
    url = asset_store(request).signer.url(f"/v1/uploads/{slot_id}", method="PUT")
    return UploadUrlResponse(data=UploadUrlData(uploadUrl=url))


async def put_upload(request: Request, slot_id: str) -> UploadedResponse:
    """The presigned PUT: no key, the signature is the permission."""
    store = asset_store(request)
    exp = request.query_params.get("exp")
    sig = request.query_params.get("sig")
    if not store.signer.verify("PUT", f"/v1/uploads/{slot_id}", exp, sig):
        raise bad_signature()
    if SLOT_ID.match(slot_id) is None:
        raise _not_found("upload slot")
    async with received_upload(request, allow_form=False) as path:
        record = await keep_slot_upload(request, slot_id, path)
    return UploadedResponse(data=UploadedData(assetId=record.id))


async def keep_slot_upload(request: Request, slot_id: str, path: Path) -> AssetRecord:
    """Store what was uploaded to a slot (a valid id whose signature was checked) as its
    owner's asset, if the slot still exists and the bytes are of its kind."""
    slots = _slots(request)
    slot = await slots.get(slot_id)
    if slot is None:
        raise _not_found("upload slot (it was replaced by a newer upload URL)")
    matched = SLOT_ID.match(slot_id)
    assert matched is not None
    family: MediaFamily = matched.group(1)  # type: ignore[assignment]
    meta = {"job_id": slot.job_id, "slot_type": slot.slot_type}
    record = await keep_upload(request, path, slot.owner, family, meta)
    await slots.attach(slot_id, record.id)
    return record


async def create_download_url(request: Request, key: KeyInfo, query: Any) -> DownloadUrlResponse:
    """A signed URL of what was uploaded to the key's slot; 404 when nothing was."""
    asset_id = await _slots(request).latest_upload(key.id, query.job_id, query.type, query.image_id)
    store = asset_store(request)
    record = await store.get(asset_id, owner=key.id) if asset_id else None
    if record is None:
        raise _not_found("upload for this jobId and type")
    return DownloadUrlResponse(data=DownloadUrlData(downloadUrl=store.url(record)))
