"""Routes of the LoRA catalogs: `/v1/loras/comfy` (the image backends' LoRA folders) and
`/v1/loras/personal` (each key's own imports; another key's is a 404). `catalog` is registered
before `/{lora_id}`."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from sogni_intelligence.api.auth import CurrentKey
from sogni_intelligence.api.errors import SogniRoute
from sogni_intelligence.api.loras import serving
from sogni_intelligence.api.loras.protocol import (
    CatalogView,
    DeletedLora,
    ImportBody,
    PersonalCatalog,
    PersonalList,
    PersonalLoraView,
)
from sogni_intelligence.api.wire import Envelope

router = APIRouter(route_class=SogniRoute, tags=["loras"])
PERSONAL = "/v1/loras/personal"


@router.get("/v1/loras/comfy")
async def comfy_catalog(
    request: Request,
    key: CurrentKey,
    model_id: str | None = Query(None, alias="modelId", max_length=128),
) -> Envelope[CatalogView]:
    return Envelope[CatalogView](data=await serving.catalog(request, model_id))


@router.get(PERSONAL)
async def list_personal(request: Request, key: CurrentKey) -> Envelope[PersonalList]:
    return Envelope[PersonalList](data=await serving.list_personal(request, key))


@router.post(PERSONAL, status_code=201)
async def import_personal(
    body: ImportBody, request: Request, key: CurrentKey
) -> Envelope[PersonalLoraView]:
    return Envelope[PersonalLoraView](data=await serving.import_personal(request, key, body))


@router.get(f"{PERSONAL}/catalog")
async def personal_catalog(request: Request, key: CurrentKey) -> Envelope[PersonalCatalog]:
    return Envelope[PersonalCatalog](data=await serving.personal_catalog(request, key))


@router.get(f"{PERSONAL}/{{lora_id:path}}")
async def get_personal(
    lora_id: str, request: Request, key: CurrentKey
) -> Envelope[PersonalLoraView]:
    return Envelope[PersonalLoraView](data=await serving.get_personal(request, key, lora_id))


@router.delete(f"{PERSONAL}/{{lora_id:path}}")
async def delete_personal(lora_id: str, request: Request, key: CurrentKey) -> Envelope[DeletedLora]:
    return Envelope[DeletedLora](data=await serving.delete_personal(request, key, lora_id))
