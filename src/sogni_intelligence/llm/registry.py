"""Which engine answers which model id."""

from __future__ import annotations

from dataclasses import dataclass

from sogni_intelligence.config import ModelConfig, Settings
from sogni_intelligence.llm.embedded import EmbeddedEngine
from sogni_intelligence.llm.pool import PoolEngine, PoolMember
from sogni_intelligence.llm.protocol import ChatEngine, EngineError
from sogni_intelligence.llm.upstream import UpstreamEngine


@dataclass(frozen=True)
class ModelEntry:
    """One public id: a configured model's own id or one of its aliases."""

    id: str
    config: ModelConfig
    engine: ChatEngine

    @property
    def alias_of(self) -> str | None:
        return None if self.id == self.config.id else self.config.id


def build_engine(config: ModelConfig) -> ChatEngine:
    """The embedded model alone, or a pool: every upstream (even a single one, so that its
    health shows and a dead one is answered with a clear 503), with the embedded model too
    when the model's own engine is embedded."""
    upstreams = config.pool_upstreams
    if not upstreams:
        return EmbeddedEngine(config)
    members = [
        PoolMember(UpstreamEngine(config, upstream), upstream.weight) for upstream in upstreams
    ]
    if config.engine == "embedded":
        members.insert(0, PoolMember(EmbeddedEngine(config), config.weight))
    return PoolEngine(config, members)


class ModelRegistry:
    def __init__(self, settings: Settings) -> None:
        self.default_id = settings.default_model
        self.engines = [build_engine(model) for model in settings.models]
        self._entries: dict[str, ModelEntry] = {}
        for config, engine in zip(settings.models, self.engines, strict=True):
            for name in (config.id, *config.aliases):
                self._entries[name] = ModelEntry(name, config, engine)

    async def start(self) -> None:
        for engine in self.engines:
            await engine.start()

    async def close(self) -> None:
        for engine in self.engines:
            await engine.close()

    def entries(self) -> list[ModelEntry]:
        return list(self._entries.values())

    def resolve(self, model_id: str | None) -> ModelEntry:
        entry = self._entries.get(model_id or self.default_id)
        if entry is None:
            raise EngineError(
                f"The model '{model_id}' does not exist",
                404,
                "invalid_request_error",
                "model_not_found",
                "model",
            )
        return entry
