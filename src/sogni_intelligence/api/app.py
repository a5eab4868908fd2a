"""The FastAPI application and what it owns for its lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request

from sogni_intelligence import __version__
from sogni_intelligence.agent.loop import AgentLoop, LoopLimits
from sogni_intelligence.api import errors
from sogni_intelligence.api.account.api_router import router as account_router
from sogni_intelligence.api.assets.api_router import router as assets_router
from sogni_intelligence.api.auth import require_key
from sogni_intelligence.api.chat_completions.api_router import router as chat_router
from sogni_intelligence.api.chat_completions.serving import ChatCompletionsService
from sogni_intelligence.api.chat_completions.vision import ImageLimits
from sogni_intelligence.api.chat_runs.api_router import router as chat_runs_router
from sogni_intelligence.api.console.api_router import router as console_router
from sogni_intelligence.api.keys.api_router import router as keys_router
from sogni_intelligence.api.limits import BodySizeLimit
from sogni_intelligence.api.loras.api_router import router as loras_router
from sogni_intelligence.api.media.api_router import router as media_router
from sogni_intelligence.api.messages.api_router import router as messages_router
from sogni_intelligence.api.metrics import router as metrics_router
from sogni_intelligence.api.models.api_router import router as models_router
from sogni_intelligence.api.openapi_errors import document_errors
from sogni_intelligence.api.replay.api_router import router as replay_router
from sogni_intelligence.api.responses.api_router import router as responses_router
from sogni_intelligence.api.state import Server
from sogni_intelligence.api.tools_execute.api_router import router as tools_execute_router
from sogni_intelligence.api.workflows.api_router import router as workflows_router
from sogni_intelligence.config import Settings
from sogni_intelligence.errors import ServiceError
from sogni_intelligence.observability.http import ObserveRequests
from sogni_intelligence.observability.server import MetricsServer
from sogni_intelligence.runtime import durable, endings
from sogni_intelligence.runtime.chat_runs import ChatRunDeps, ChatRunRuntime
from sogni_intelligence.runtime.gauges import gauge_refresher
from sogni_intelligence.runtime.liveness import Liveness
from sogni_intelligence.runtime.replay_records import RunReplays
from sogni_intelligence.runtime.template_store import TemplateStore
from sogni_intelligence.runtime.wiring import open_core
from sogni_intelligence.store.keys import KeyStore
from sogni_intelligence.store.replays import ReplayStore

log = logging.getLogger(__name__)

health_router = APIRouter()


@health_router.get("/health")
async def health() -> dict[str, str]:
    """Unauthenticated liveness and readiness: answers once the models are loaded."""
    return {"status": "ok", "version": __version__}


async def ensure_first_key(keys: KeyStore) -> None:
    """On a fresh database, mint one key and show it once, so the server is usable at once."""
    if await keys.count_active() > 0:
        return
    key, info = await keys.create("first key", role="admin")
    print(
        f"\nCreated admin API key {info.id} (shown only once):\n\n    {key}\n\n"
        "Send it as 'Authorization: Bearer <key>'. Manage keys with 'sogni-intelligence keys'.\n",
        file=sys.stderr,
        flush=True,
    )


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        core = await open_core(settings)
        keys = KeyStore(core.db, settings.key_cache_seconds)
        await ensure_first_key(keys)
        agent = AgentLoop(
            core.workflows,
            core.assets,
            core.tool_services,
            settings.resolved_public_base_url,
            LoopLimits.from_settings(settings),
            core.usage,
        )
        chat_runs = ChatRunRuntime(
            ChatRunDeps(core.records, agent, core.registry, core.fetch_policy, core.workflows)
        )
        replays = ReplayStore(core.db)
        run_replays = RunReplays(core.records, replays, settings.replay_record_max_bytes)
        if settings.replay_records_from_runs:
            run_replays.watch()
        core.workflows.launch()
        chat_runs.launch()
        await chat_runs.recover()
        # DBOS recovers the workflows and runs this process left unfinished as it launches.
        await durable.launch(settings, settings.executor_id)
        await core.workflows.resume_pending()
        await chat_runs.launch_pending()
        sweeper = asyncio.create_task(endings.sweep_forever(core.records, settings.record_sweep_s))
        liveness = Liveness(
            core.db,
            settings.executor_id,
            "api",
            settings.worker_queues,
            settings.heartbeat_s,
            settings.takeover_after_s,
            on_company=durable.poll_queues,
        )
        beating = asyncio.create_task(liveness.run_forever())
        chat = ChatCompletionsService(
            core.registry,
            ImageLimits(settings.max_image_bytes, settings.max_image_side),
            settings.max_images,
            agent,
            core.fetch_policy,
            core.usage,
        )
        app.state.server = Server.on(
            core,
            keys=keys,
            templates=TemplateStore(core.db),
            chat_runs=chat_runs,
            chat=chat,
            replays=replays,
            started_at=int(time.time()),
        )
        metrics_server = None
        if settings.metrics_port is not None:
            metrics_server = MetricsServer(
                settings.metrics_host, settings.metrics_port, gauge_refresher(core.records)
            )
        try:
            if metrics_server is not None:
                await metrics_server.start()
            yield
        finally:
            if metrics_server is not None:
                await metrics_server.stop()
            for task in (sweeper, beating):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task  # before the database and DBOS go away under it
            durable.shutdown()
            await run_replays.settle()
            await core.close()

    app = FastAPI(title="Sogni Intelligence (self-hosted)", version=__version__, lifespan=lifespan)
    errors.install(app)
    document_errors(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(ObserveRequests)  # added last: it sees every response leave
    routers = (
        health_router,
        models_router,
        account_router,
        chat_router,
        responses_router,
        messages_router,
        chat_runs_router,
        media_router,
        assets_router,
        loras_router,
        workflows_router,
        tools_execute_router,
        keys_router,
        replay_router,
        console_router,
    )
    for router in routers:
        app.include_router(router)
    if settings.metrics_port is None:  # else they are served on a port of their own
        app.include_router(metrics_router)

    @app.api_route(
        "/v1/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    async def unknown_route(path: str, request: Request) -> None:
        # Auth first, so an unauthenticated caller learns nothing about which routes exist.
        await require_key(request)
        raise ServiceError(f"Unknown route /v1/{path}", 404, "not_found_error")

    return app
