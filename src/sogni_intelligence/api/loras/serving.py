"""What the LoRA routes do: list the catalog found in the image backends' `lora_dirs`, and
import, list and remove a key's personal LoRAs (kept in the asset store)."""

from __future__ import annotations

from fastapi import Request

from sogni_intelligence.api.loras.protocol import (
    CatalogView,
    DeletedLora,
    ImportBody,
    LoraConstraints,
    LoraView,
    PersonalCatalog,
    PersonalLimits,
    PersonalList,
    PersonalLoraView,
)
from sogni_intelligence.api.media.serving import asset_store
from sogni_intelligence.api.state import server_of
from sogni_intelligence.config import Settings
from sogni_intelligence.errors import ServiceError, invalid_request
from sogni_intelligence.media.fetch import FetchPolicy
from sogni_intelligence.media.loras import (
    LoraImport,
    import_personal_lora,
    model_ids_of,
    scan_catalog,
)
from sogni_intelligence.store.keys import KeyInfo
from sogni_intelligence.store.personal_loras import PersonalLoraStore, StoredLora, is_personal_id


def not_found() -> ServiceError:
    return ServiceError("No such personal LoRA.", 404, "not_found_error", "not_found")


def _settings(request: Request) -> Settings:
    return server_of(request).settings


def _personal(request: Request) -> PersonalLoraStore:
    return PersonalLoraStore(server_of(request).db)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


async def catalog(request: Request, model_id: str | None) -> CatalogView:
    """The catalog LoRAs (those `model_id` can load, when given), read from disk per request
    so files added or removed show at once."""
    backends = _settings(request).image_backends
    files = scan_catalog(backends)
    scoped = [f for f in files if model_id is None or model_id in f.model_ids]
    return CatalogView(
        loras=[
            LoraView(
                loraId=f.lora_id,
                name=f.lora_id,
                modelIds=list(f.model_ids),
                bytes=f.size_bytes,
                source="catalog",
            )
            for f in scoped
        ],
        models=sorted({m for b in backends if b.lora_dirs for m in model_ids_of(b)}),
        constraints=LoraConstraints(),
        lastUpdated=_ms(max(f.modified_at for f in files)) if files else None,
    )


def personal_models(settings: Settings) -> list[str]:
    """The image model ids a personal LoRA may be imported for: those of the configured image
    backends (the built-in renderer loads no LoRAs)."""
    return sorted({m for b in settings.image_backends for m in model_ids_of(b)})


async def _view(request: Request, lora: StoredLora) -> PersonalLoraView:
    record = await asset_store(request).get(lora.asset_id, owner=lora.owner)
    return PersonalLoraView(
        id=lora.id,
        loraId=lora.id,
        name=lora.name,
        modelId=lora.model_id,
        modelIds=[lora.model_id],
        bytes=record.size_bytes if record else 0,
        sha256=record.sha256 if record else None,
        source="personal",
        sourceUrl=lora.source_url,
        createdAt=_ms(lora.created_at.timestamp()),
    )


async def _views(request: Request, key: KeyInfo) -> list[PersonalLoraView]:
    return [await _view(request, lora) for lora in await _personal(request).list(key.id)]


async def list_personal(request: Request, key: KeyInfo) -> PersonalList:
    settings = _settings(request)
    views = await _views(request, key)
    return PersonalList(
        loras=views,
        models=personal_models(settings),
        limits=PersonalLimits(
            maxLoras=settings.personal_loras_per_key,
            used=len(views),
            maxBytes=settings.lora_max_bytes,
        ),
    )


async def personal_catalog(request: Request, key: KeyInfo) -> PersonalCatalog:
    return PersonalCatalog(loras=await _views(request, key))


async def get_personal(request: Request, key: KeyInfo, lora_id: str) -> PersonalLoraView:
    lora = await _personal(request).get(key.id, lora_id) if is_personal_id(lora_id) else None
    if lora is None:
        raise not_found()
    return await _view(request, lora)


async def import_personal(request: Request, key: KeyInfo, body: ImportBody) -> PersonalLoraView:
    settings = _settings(request)
    if not body.rights_confirmed:
        raise invalid_request(
            "confirm that you have the rights to use this LoRA (rightsConfirmed: true)",
            "rightsConfirmed",
        )
    models = personal_models(settings)
    if body.model_id not in models:
        known = ", ".join(models) or "none (no image backend is configured)"
        raise invalid_request(
            f"no image model {body.model_id!r} here loads LoRAs; available: {known}", "modelId"
        )
    policy = FetchPolicy.from_settings(settings, max_bytes=settings.lora_max_bytes)
    stored = await import_personal_lora(
        asset_store(request),
        _personal(request),
        policy,
        key.id,
        LoraImport(body.name, body.model_id, body.url),
        settings.personal_loras_per_key,
    )
    return await _view(request, stored)


async def delete_personal(request: Request, key: KeyInfo, lora_id: str) -> DeletedLora:
    if not is_personal_id(lora_id) or not await _personal(request).delete(key.id, lora_id):
        raise not_found()
    return DeletedLora(id=lora_id)
