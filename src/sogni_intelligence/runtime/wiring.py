"""The core of a server process, built from the settings in one place: `serve` (the API) and
`worker` (queued media jobs only) open the same stores, models and workflow runtime, and
close them the same way."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sogni_intelligence.config import Settings
from sogni_intelligence.llm.registry import ModelRegistry
from sogni_intelligence.media.fetch import FetchPolicy
from sogni_intelligence.media.store import AssetStore
from sogni_intelligence.runtime.workflow_steps import WorkflowDeps
from sogni_intelligence.runtime.workflows import WorkflowRuntime
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.records import RecordStore
from sogni_intelligence.store.usage import UsageStore
from sogni_intelligence.tools.base import ToolServices
from sogni_intelligence.tools.comfy_tools import ComfyTool
from sogni_intelligence.tools.services import build_tool_services

log = logging.getLogger(__name__)


@dataclass
class Core:
    settings: Settings
    db: Database
    registry: ModelRegistry
    assets: AssetStore
    #: What hosted tools run with (remote image backends, a text and a vision LLM).
    tool_services: ToolServices
    fetch_policy: FetchPolicy
    #: One store per process, so events reach their followers in memory.
    records: RecordStore
    workflows: WorkflowRuntime
    #: Per-key usage against the keys' limits, shared by every process on the database.
    usage: UsageStore

    async def close(self) -> None:
        for backend in self.tool_services.image_backends.values():
            await backend.close()
        for tool in self.tool_services.bound_tools.values():
            if isinstance(tool.run, ComfyTool):
                await tool.run.close()
        await self.registry.close()
        await self.db.close()


async def open_core(settings: Settings, *, load_models: bool = True) -> Core:
    """Create the database's tables if needed and, with `load_models`, load the models (a
    worker that asks no LLM skips them)."""
    settings.ensure_data_dir()
    db = Database(settings.resolved_database_url)
    await db.create_all()
    assets = AssetStore.from_settings(db, settings)
    await assets.blobs.check()
    registry = ModelRegistry(settings)
    if load_models:
        started = time.monotonic()
        await registry.start()
        log.info("models loaded in %.2f s", time.monotonic() - started)
    tool_services = build_tool_services(settings, registry)
    fetch_policy = FetchPolicy.from_settings(settings)
    records = RecordStore(db)
    usage = UsageStore(db, settings.key_cache_seconds)
    workflows = WorkflowRuntime(
        WorkflowDeps(records, assets, fetch_policy, tool_services),
        approval_threshold=settings.workflow_cost_confirmation_units,
        usage=usage,
    )
    return Core(
        settings, db, registry, assets, tool_services, fetch_policy, records, workflows, usage
    )
