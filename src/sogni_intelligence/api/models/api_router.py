"""Routes of the model list."""

from __future__ import annotations

from fastapi import APIRouter, Request

from sogni_intelligence.api.auth import CurrentKey
from sogni_intelligence.api.models.protocol import ModelCard, ModelList
from sogni_intelligence.api.models.serving import list_models, model_card
from sogni_intelligence.api.state import server_of

router = APIRouter()


@router.get("/v1/models")
async def get_models(request: Request, _key: CurrentKey) -> ModelList:
    return list_models(server_of(request).registry, server_of(request).started_at)


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request, _key: CurrentKey) -> ModelCard:
    registry = server_of(request).registry
    return model_card(registry.resolve(model_id), registry, server_of(request).started_at)
