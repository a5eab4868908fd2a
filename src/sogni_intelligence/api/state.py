"""What the API's routes work with, typed: the process core and the API's own services, held
on the application for its lifetime."""

from __future__ import annotations

from dataclasses import dataclass, fields

from fastapi import Request

from sogni_intelligence.api.chat_completions.serving import ChatCompletionsService
from sogni_intelligence.runtime.chat_runs import ChatRunRuntime
from sogni_intelligence.runtime.template_store import TemplateStore
from sogni_intelligence.runtime.wiring import Core
from sogni_intelligence.store.keys import KeyStore
from sogni_intelligence.store.replays import ReplayStore


@dataclass
class Server(Core):
    keys: KeyStore
    templates: TemplateStore
    chat_runs: ChatRunRuntime
    chat: ChatCompletionsService
    replays: ReplayStore
    #: Unix time the server started (the `created` of `/v1/models`).
    started_at: int

    @classmethod
    def on(
        cls,
        core: Core,
        *,
        keys: KeyStore,
        templates: TemplateStore,
        chat_runs: ChatRunRuntime,
        chat: ChatCompletionsService,
        replays: ReplayStore,
        started_at: int,
    ) -> Server:
        parts = {f.name: getattr(core, f.name) for f in fields(Core)}
        return cls(
            **parts,
            keys=keys,
            templates=templates,
            chat_runs=chat_runs,
            chat=chat,
            replays=replays,
            started_at=started_at,
        )


def server_of(request: Request) -> Server:
    return request.app.state.server
