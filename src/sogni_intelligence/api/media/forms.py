"""The v2 upload routes: a presigned POST form instead of a presigned PUT URL.

`GET /v2/{image,media}/uploadUrl` makes an upload slot (as v1 does) and answers a form: the
URL to POST to and the fields to send before the file (`key`, `Content-Type`, a base64 JSON
`policy` that states the limits, and the `expires` and `signature` that make it valid). The
POST needs no API key: the signature over the slot is the permission, checked before a byte
of the file is kept, and the limits are the server's own (the policy only states them).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from fastapi import Request

from sogni_intelligence.api.media import serving
from sogni_intelligence.api.media.protocol import (
    MediaFamily,
    UploadedData,
    UploadedResponse,
    UploadFormData,
    UploadFormResponse,
)
from sogni_intelligence.errors import invalid_request
from sogni_intelligence.store.keys import KeyInfo

FORM_PATH = "/v2/uploads"
FIELDS = ("key", "Content-Type", "policy", "expires", "signature")


def _slot_path(slot_id: str) -> str:
    return f"{FORM_PATH}/{slot_id}"


def _policy(slot_id: str, content_type: str, expires: int, max_bytes: int) -> str:
    document = {
        "expiration": datetime.fromtimestamp(expires, UTC).isoformat().replace("+00:00", "Z"),
        "conditions": [
            {"key": slot_id},
            {"Content-Type": content_type},
            ["content-length-range", 1, max_bytes],
        ],
    }
    return base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()


async def create_upload_form(
    request: Request, key: KeyInfo, query: Any, family: MediaFamily | None
) -> UploadFormResponse:
    slot_id, kind = await serving.new_slot(request, key, query, family)
    content_type = query.content_type or f"{kind}/*"
    store = serving.asset_store(request)
    expires, signature = store.signer.sign(_slot_path(slot_id), "POST")
    max_bytes = serving.settings_of(request).max_upload_bytes
    fields = {
        "key": slot_id,
        "Content-Type": content_type,
        "policy": _policy(slot_id, content_type, expires, max_bytes),
        "expires": str(expires),
        "signature": signature,
    }
    return UploadFormResponse(
        data=UploadFormData(url=store.signer.base_url + FORM_PATH, fields=fields)
    )


async def post_upload_form(request: Request) -> UploadedResponse:
    """The presigned POST: its fields, then the file, in one multipart body."""
    if serving.form_boundary(request.headers.get("content-type", "")) is None:
        async for _ in request.stream():  # read through the size limit: too large is a 413
            pass
        raise invalid_request("send the upload as multipart/form-data: the fields, then 'file'")
    signed: dict[str, str] = {}

    def check(fields: dict[str, str]) -> None:
        slot_id = fields.get("key", "")
        if serving.SLOT_ID.match(slot_id) is None or not serving.asset_store(request).signer.verify(
            "POST", _slot_path(slot_id), fields.get("expires"), fields.get("signature")
        ):
            raise serving.bad_signature()
        signed["slot"] = slot_id

    async with serving.received_upload(request, allow_form=True, on_file=check) as path:
        record = await serving.keep_slot_upload(request, signed["slot"], path)
    return UploadedResponse(data=UploadedData(assetId=record.id))
