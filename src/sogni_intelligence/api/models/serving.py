"""Model cards from the registry."""

from __future__ import annotations

from sogni_intelligence.api.models.protocol import (
    ModelCapabilities,
    ModelCard,
    ModelList,
    PoolMemberCard,
)
from sogni_intelligence.llm.pool import PoolEngine, PoolMember
from sogni_intelligence.llm.registry import ModelEntry, ModelRegistry


def member_card(member: PoolMember) -> PoolMemberCard:
    info = member.engine.info
    return PoolMemberCard(
        engine=info.engine,  # type: ignore[arg-type]
        url=info.url,
        served_by=info.model,
        weight=member.weight,
        healthy=member.healthy,
        in_flight=member.in_flight,
        failures=member.failures,
        last_error=member.last_error,
    )


def model_card(entry: ModelEntry, registry: ModelRegistry, created: int) -> ModelCard:
    info = entry.engine.info
    if info.engine == "upstream":
        tools = "upstream"
    else:
        tools = "native" if info.native_tools else "grammar"
    engine = entry.engine
    pool = [member_card(m) for m in engine.members] if isinstance(engine, PoolEngine) else None
    return ModelCard(
        id=entry.id,
        created=created,
        engine=info.engine,  # type: ignore[arg-type]
        served_by=info.model,
        alias_of=entry.alias_of,
        default=entry.id == registry.default_id,
        slots=info.slots,
        capabilities=ModelCapabilities(vision=info.vision, tools=tools),  # type: ignore[arg-type]
        pool=pool,
    )


def list_models(registry: ModelRegistry, created: int) -> ModelList:
    return ModelList(data=[model_card(entry, registry, created) for entry in registry.entries()])
