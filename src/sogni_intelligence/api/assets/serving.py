"""What the saved-upload routes do. A saved upload is declared (`prepare`), its bytes are PUT
to a signed, short-lived URL (no key: the signature is the permission, and the URL works once),
`finalize` checks the stored bytes against the declaration, and `bind` copies a ready upload
into a project's input slot, where `GET /v1/{image,media}/downloadUrl` finds it."""

from __future__ import annotations

import re
import shutil
import time

from fastapi import Request

from sogni_intelligence.api.assets.protocol import (
    SAVED_KINDS,
    SAVED_TYPES,
    AssetPage,
    BindBody,
    BoundView,
    Capabilities,
    DeletedView,
    FinalizeBody,
    Limits,
    PrepareBody,
    PreparedView,
    SavedAssetView,
    declared_type,
)
from sogni_intelligence.api.media.serving import asset_store, bad_signature, receive_upload
from sogni_intelligence.api.state import server_of
from sogni_intelligence.errors import ServiceError, invalid_request
from sogni_intelligence.media.sniff import sniff
from sogni_intelligence.media.store import AssetRecord
from sogni_intelligence.store.keys import KeyInfo
from sogni_intelligence.store.saved_assets import (
    Declared,
    LibraryFull,
    SavedAssetStore,
    SavedUpload,
)
from sogni_intelligence.store.upload_slots import SlotKey, UploadSlotStore

SAVED_ID = re.compile(r"sav_[0-9a-f]{24}")


def content_path(saved_id: str) -> str:
    return f"/v1/assets/{saved_id}/content"


# --- errors -----------------------------------------------------------------------------------


def not_found() -> ServiceError:
    return ServiceError("No such saved upload.", 404, "not_found_error", "not_found")


def _conflict(message: str, code: str) -> ServiceError:
    return ServiceError(message, 409, "invalid_request_error", code)


# --- state ------------------------------------------------------------------------------------


def _saved_store(request: Request) -> SavedAssetStore:
    return SavedAssetStore(server_of(request).db)


def _max_bytes(request: Request) -> int:
    return server_of(request).settings.max_upload_bytes


def _max_assets(request: Request) -> int:
    return server_of(request).settings.saved_assets_per_key


async def _owned(request: Request, key: KeyInfo, saved_id: str) -> SavedUpload:
    saved = (
        await _saved_store(request).get(saved_id, key.id) if SAVED_ID.fullmatch(saved_id) else None
    )
    if saved is None:
        raise not_found()
    return saved


def view(request: Request, saved: SavedUpload, record: AssetRecord | None) -> SavedAssetView:
    """The wire view; a ready upload carries its kind, facts and a signed download URL."""
    out = SavedAssetView(
        id=saved.id,
        name=saved.name,
        state=saved.state,
        contentType=saved.content_type,
        bytes=saved.size_bytes,
        sha256=saved.sha256,
        createdAt=int(saved.created_at.timestamp() * 1000),
    )
    if record is None or saved.state != "ready":
        return out
    return out.model_copy(
        update={
            "sha256": record.sha256,
            "kind": record.kind,
            "url": asset_store(request).url(record),
            "width": record.width,
            "height": record.height,
            "durationSeconds": record.duration_s,
        }
    )


# --- routes -----------------------------------------------------------------------------------


def capabilities(request: Request) -> Capabilities:
    return Capabilities(
        enabled=True,
        maxBytes=_max_bytes(request),
        maxAssets=_max_assets(request),
        kinds=list(SAVED_KINDS),
        contentTypes=sorted(SAVED_TYPES),
    )


async def list_page(request: Request, key: KeyInfo, limit: int, after: str | None) -> AssetPage:
    if after is not None and not SAVED_ID.fullmatch(after):
        raise invalid_request("after must be the id of a saved upload (nextCursor)", "after")
    saved = _saved_store(request)
    rows = await saved.page(key.id, limit + 1, after)
    more = len(rows) > limit
    rows = rows[:limit]
    records = await asset_store(request).get_many(
        [row.asset_id for row in rows if row.asset_id], owner=key.id
    )
    return AssetPage(
        assets=[view(request, row, records.get(row.asset_id or "")) for row in rows],
        limits=Limits(
            maxBytes=_max_bytes(request),
            maxAssets=_max_assets(request),
            used=await saved.count(key.id),
            contentTypes=sorted(SAVED_TYPES),
        ),
        nextCursor=rows[-1].id if more else None,
    )


async def prepare(request: Request, key: KeyInfo, body: PrepareBody) -> PreparedView:
    """A pending upload and its signed PUT URL; the key's ready upload of the same bytes when
    it already has one (then nothing is sent again)."""
    limit = _max_bytes(request)
    if body.size_bytes > limit:
        raise ServiceError(
            f"A saved upload may be at most {limit} bytes.",
            413,
            "invalid_request_error",
            "upload_too_large",
            "bytes",
        )
    saved = _saved_store(request)
    if body.sha256 is not None:
        existing = await saved.find_ready(key.id, body.sha256, body.content_type)
        if existing is not None and existing.asset_id is not None:
            record = await asset_store(request).get(existing.asset_id, owner=key.id)
            if record is not None:
                return PreparedView(**view(request, existing, record).model_dump())
    declared = Declared(body.name, body.content_type, body.size_bytes, body.sha256)
    try:
        pending = await saved.declare(key.id, declared, _max_assets(request))
    except LibraryFull:
        raise _conflict(
            "Your saved upload library is full. Remove a saved upload first.", "library_full"
        ) from None
    ttl = server_of(request).settings.asset_upload_url_ttl_s
    signer = asset_store(request).signer
    return PreparedView(
        **view(request, pending, None).model_dump(),
        uploadUrl=signer.url(content_path(pending.id), method="PUT", ttl_s=ttl),
        uploadHeaders={"Content-Type": pending.content_type},
        uploadExpiresAt=int(time.time()) + ttl,
    )


async def put_content(request: Request, saved_id: str) -> SavedAssetView:
    """The signed PUT: the bytes must be no larger than declared, of the declared type, and
    decode; a second PUT to the same upload is refused with 412 (the first one stands)."""
    store = asset_store(request)
    exp, sig = request.query_params.get("exp"), request.query_params.get("sig")
    if not store.signer.verify("PUT", content_path(saved_id), exp, sig):
        raise bad_signature()
    saved_store = _saved_store(request)
    saved = await saved_store.get(saved_id) if SAVED_ID.fullmatch(saved_id) else None
    if saved is None:
        raise not_found()
    if saved.state != "pending":
        raise ServiceError(
            "This saved upload already has its bytes.", 412, "invalid_request_error", "uploaded"
        )
    scratch = store.scratch_dir()
    try:
        path = scratch / "upload"
        await receive_upload(request, path, saved.size_bytes, allow_form=False)
        _check_sent_type(request.headers.get("content-type", ""), saved.content_type)
        with path.open("rb") as handle:
            sniffed = sniff(handle.read(64))
        if sniffed is None or sniffed.mime != SAVED_TYPES[saved.content_type]:
            found = sniffed.mime if sniffed else "not a recognised media type"
            raise invalid_request(
                f"the bytes are {found}, but the upload was prepared as {saved.content_type}",
                code="content_type_mismatch",
            )
        record = await store.put_file(
            saved.owner, path, tool="saved_upload", meta={"saved_asset_id": saved.id}
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not await saved_store.attach(saved.id, record.id):
        raise ServiceError(
            "This saved upload already has its bytes.", 412, "invalid_request_error", "uploaded"
        )
    uploaded = await saved_store.get(saved.id)
    assert uploaded is not None
    return view(request, uploaded, record)


def _check_sent_type(sent: str, prepared: str) -> None:
    """The PUT's Content-Type is one of the upload headers `prepare` handed out."""
    try:
        matches = declared_type(sent) == prepared
    except ValueError:
        matches = False
    if not matches:
        raise invalid_request(
            f"send the upload with Content-Type {prepared}, as prepared",
            "Content-Type",
            "content_type_mismatch",
        )


async def finalize(
    request: Request, key: KeyInfo, saved_id: str, body: FinalizeBody | None
) -> SavedAssetView:
    """Check the stored bytes against the declaration (size, the sha256 given to `prepare`
    or here, and that the blob is intact); a mismatch forgets them, so the upload can be sent
    again."""
    saved = await _owned(request, key, saved_id)
    store = asset_store(request)
    if saved.state == "pending" or saved.asset_id is None:
        raise _conflict("Nothing was uploaded for this saved upload yet.", "not_uploaded")
    record = await store.get(saved.asset_id, owner=key.id)
    if saved.state == "ready" and record is not None:
        return view(request, saved, record)
    problem = None
    if record is None or not await store.intact(record):
        problem = "the uploaded bytes are missing or damaged"
    elif record.size_bytes != saved.size_bytes:
        problem = f"{record.size_bytes} bytes arrived, {saved.size_bytes} were declared"
    elif any(
        wanted is not None and record.sha256 != wanted
        for wanted in (saved.sha256, body.sha256 if body else None)
    ):
        problem = "the uploaded bytes do not have the declared sha256"
    saved_store = _saved_store(request)
    if problem is not None:
        await saved_store.reject(saved.id)
        raise invalid_request(f"{problem}; upload the file again", code="upload_mismatch")
    await saved_store.mark_ready(saved.id)
    ready = await saved_store.get(saved.id, key.id)
    assert ready is not None
    return view(request, ready, record)


async def bind(request: Request, key: KeyInfo, saved_id: str, body: BindBody) -> BoundView:
    """Copy a ready upload into the project's input slot (replacing what was there)."""
    saved = await _owned(request, key, saved_id)
    if saved.state != "ready" or saved.asset_id is None:
        raise _conflict("Finalize the saved upload before binding it.", "not_ready")
    record = await asset_store(request).get(saved.asset_id, owner=key.id)
    if record is None:
        raise not_found()
    wanted = body.slot_kind()
    if wanted is not None and wanted != record.kind:
        raise invalid_request(
            f"the slot {body.type!r} takes {wanted} files; this upload is {record.kind}", "type"
        )
    slots = UploadSlotStore(server_of(request).db)
    slot_id = await slots.replace(
        SlotKey(key.id, body.project_id, body.type, body.id or ""), record.kind
    )
    await slots.attach(slot_id, record.id)
    return BoundView(assetId=saved.id, projectId=body.project_id, type=body.type, id=body.id)


async def delete(request: Request, key: KeyInfo, saved_id: str) -> DeletedView:
    """Forget the saved upload; projects it was bound to keep their copy."""
    if not SAVED_ID.fullmatch(saved_id) or not await _saved_store(request).delete(saved_id, key.id):
        raise not_found()
    return DeletedView(id=saved_id)
