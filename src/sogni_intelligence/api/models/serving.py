"""Model cards from the registry."""

from __future__ import annotations

from sogni_intelligence.api.models.protocol import ModelCapabilities, ModelCard, ModelList
from sogni_intelligence.llm.registry import ModelEntry, ModelRegistry


def model_card(entry: ModelEntry, registry: ModelRegistry, created: int) -> ModelCard:
    info = entry.engine.info
    if info.engine == "upstream":
        tools = "upstream"
    else:
        tools = "native" if info.native_tools else "grammar"
    return ModelCard(
        id=entry.id,
        created=created,
        engine=info.engine,  # type: ignore[arg-type]
        served_by=info.model,
        alias_of=entry.alias_of,
        default=entry.id == registry.default_id,
        slots=info.slots,
        capabilities=ModelCapabilities(vision=info.vision, tools=tools),  # type: ignore[arg-type]
    )


def list_models(registry: ModelRegistry, created: int) -> ModelList:
    return ModelList(data=[model_card(entry, registry, created) for entry in registry.entries()])
