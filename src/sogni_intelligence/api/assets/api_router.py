"""Routes of saved uploads (`/v1/assets`). Every route but the signed PUT needs a key; another
key's upload is a 404. `capabilities` is registered before `/{asset_id}` routes."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from sogni_intelligence.api.assets import serving
from sogni_intelligence.api.assets.protocol import (
    AssetPage,
    BindBody,
    BoundView,
    Capabilities,
    DeletedView,
    FinalizeBody,
    PrepareBody,
    PreparedView,
    SavedAssetView,
)
from sogni_intelligence.api.auth import CurrentKey
from sogni_intelligence.api.errors import SogniRoute
from sogni_intelligence.api.wire import Envelope

router = APIRouter(route_class=SogniRoute, tags=["assets"])
BASE = "/v1/assets"

_BYTES = {"type": "string", "format": "binary"}
_SIGNED_PUT = {"requestBody": {"required": True, "content": {"*/*": {"schema": _BYTES}}}}


@router.get(f"{BASE}/capabilities")
async def capabilities(request: Request, key: CurrentKey) -> Envelope[Capabilities]:
    return Envelope[Capabilities](data=serving.capabilities(request))


@router.get(BASE)
async def list_assets(
    request: Request,
    key: CurrentKey,
    limit: int = Query(100, ge=1, le=200),
    after: str | None = Query(None, max_length=64, description="The last id of the page before."),
) -> Envelope[AssetPage]:
    return Envelope[AssetPage](data=await serving.list_page(request, key, limit, after))


@router.post(f"{BASE}/prepare")
async def prepare(body: PrepareBody, request: Request, key: CurrentKey) -> Envelope[PreparedView]:
    return Envelope[PreparedView](data=await serving.prepare(request, key, body))


@router.put(f"{BASE}/{{asset_id}}/content", openapi_extra=_SIGNED_PUT)
async def put_content(request: Request, asset_id: str) -> Envelope[SavedAssetView]:
    return Envelope[SavedAssetView](data=await serving.put_content(request, asset_id))


@router.post(f"{BASE}/{{asset_id}}/finalize")
async def finalize(
    asset_id: str, request: Request, key: CurrentKey, body: FinalizeBody | None = None
) -> Envelope[SavedAssetView]:
    return Envelope[SavedAssetView](data=await serving.finalize(request, key, asset_id, body))


@router.post(f"{BASE}/{{asset_id}}/bind")
async def bind(
    asset_id: str, body: BindBody, request: Request, key: CurrentKey
) -> Envelope[BoundView]:
    return Envelope[BoundView](data=await serving.bind(request, key, asset_id, body))


@router.delete(f"{BASE}/{{asset_id:path}}")
async def delete(asset_id: str, request: Request, key: CurrentKey) -> Envelope[DeletedView]:
    return Envelope[DeletedView](data=await serving.delete(request, key, asset_id))
