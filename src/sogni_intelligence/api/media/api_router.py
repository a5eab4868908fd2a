"""Routes of media downloads, uploads and upload/download URLs.

The URL routes (`uploadUrl`, `downloadUrl`) are registered before `/v1/media/{asset_id}`, whose
id takes the rest of the path so that malformed ids (`../..`) end here as a 404 instead of
reaching any other route.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from sogni_intelligence.api.auth import CurrentKey
from sogni_intelligence.api.errors import SogniRoute
from sogni_intelligence.api.media import forms, serving
from sogni_intelligence.api.media.protocol import (
    AssetResponse,
    DownloadUrlResponse,
    ImageSlotQuery,
    ImageUploadUrlQuery,
    MediaSlotQuery,
    MediaUploadUrlQuery,
    UploadedResponse,
    UploadFormResponse,
    UploadUrlResponse,
)

router = APIRouter(route_class=SogniRoute, tags=["media"])

# Uploads stream to disk as they arrive, so their bodies are read by hand, not by a model; these
# tell the OpenAPI document what the handlers take. The kind of file comes from its bytes.
_BYTES = {"type": "string", "format": "binary"}
_FORM = {"type": "object", "properties": {"file": _BYTES}, "required": ["file"]}
_DIRECT_UPLOAD = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": _FORM},
            "application/octet-stream": {"schema": _BYTES},
        },
    }
}
_SIGNED_FORM = {
    "type": "object",
    "properties": {**{name: {"type": "string"} for name in forms.FIELDS}, "file": _BYTES},
    "required": ["key", "expires", "signature", "file"],
}
_FORM_UPLOAD = {
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _SIGNED_FORM}}}
}
_SLOT_UPLOAD = {
    "requestBody": {"required": True, "content": {"application/octet-stream": {"schema": _BYTES}}}
}


@router.get("/v1/image/uploadUrl")
async def image_upload_url(request: Request, key: CurrentKey) -> UploadUrlResponse:
    query = serving.parse_query(ImageUploadUrlQuery, request)
    return await serving.create_upload_url(request, key, query, "image")


@router.get("/v1/media/uploadUrl")
async def media_upload_url(request: Request, key: CurrentKey) -> UploadUrlResponse:
    query = serving.parse_query(MediaUploadUrlQuery, request)
    return await serving.create_upload_url(request, key, query, None)


@router.get("/v2/image/uploadUrl")
async def image_upload_form(request: Request, key: CurrentKey) -> UploadFormResponse:
    query = serving.parse_query(ImageUploadUrlQuery, request)
    return await forms.create_upload_form(request, key, query, "image")


@router.get("/v2/media/uploadUrl")
async def media_upload_form(request: Request, key: CurrentKey) -> UploadFormResponse:
    query = serving.parse_query(MediaUploadUrlQuery, request)
    return await forms.create_upload_form(request, key, query, None)


@router.post(forms.FORM_PATH, status_code=201, openapi_extra=_FORM_UPLOAD)
async def post_upload_form(request: Request) -> UploadedResponse:
    return await forms.post_upload_form(request)


@router.get("/v1/image/downloadUrl")
@router.get("/v2/image/downloadUrl")
async def image_download_url(request: Request, key: CurrentKey) -> DownloadUrlResponse:
    query = serving.parse_query(ImageSlotQuery, request)
    return await serving.create_download_url(request, key, query)


@router.get("/v1/media/downloadUrl")
@router.get("/v2/media/downloadUrl")
async def media_download_url(request: Request, key: CurrentKey) -> DownloadUrlResponse:
    query = serving.parse_query(MediaSlotQuery, request)
    return await serving.create_download_url(request, key, query)


@router.put("/v1/uploads/{slot_id:path}", openapi_extra=_SLOT_UPLOAD)
async def put_upload(request: Request, slot_id: str) -> UploadedResponse:
    return await serving.put_upload(request, slot_id)


@router.post("/v1/media", status_code=201, openapi_extra=_DIRECT_UPLOAD)
async def upload_media(request: Request, key: CurrentKey) -> AssetResponse:
    return await serving.upload_direct(request, key)


# HEAD is the same handler, left out of the document (one operation id per operation).
@router.head("/v1/media/{asset_id:path}", response_model=None, include_in_schema=False)
@router.get("/v1/media/{asset_id:path}", response_model=None)
async def get_media(request: Request, asset_id: str) -> Response:
    return await serving.serve_asset(request, asset_id)
