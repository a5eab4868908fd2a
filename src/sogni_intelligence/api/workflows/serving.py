"""Workflow and template logic between the routes and the durable runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from fastapi import Request

from sogni_intelligence.api.sse import Framed, is_latest, nothing, record_events
from sogni_intelligence.api.state import server_of
from sogni_intelligence.errors import ServiceError
from sogni_intelligence.runtime.template_store import TemplateStore
from sogni_intelligence.runtime.workflows import WorkflowRuntime, status_before, status_set_by
from sogni_intelligence.store.records import Event, Record
from sogni_intelligence.tools.templates import compile_template

STREAM_CLOSES_AT = frozenset(
    {"completed", "partial_failure", "failed", "cancelled", "waiting_for_user"}
)


def runtime_of(request: Request) -> WorkflowRuntime:
    return server_of(request).workflows


def templates_of(request: Request) -> TemplateStore:
    return server_of(request).templates


def not_found(what: str = "workflow") -> ServiceError:
    return ServiceError(f"No such {what}.", 404, "not_found_error", "not_found")


def invalid(message: str) -> ServiceError:
    return ServiceError(message, 400, "invalid_request_error", "invalid_request")


def conflict(message: str) -> ServiceError:
    return ServiceError(message, 409, "conflict_error", "stale_cost_preview")


async def owned_workflow(request: Request, owner: str | None, workflow_id: str) -> Record:
    """The workflow if `owner` owns it (None: anyone may), else a 404."""
    record = await runtime_of(request).deps.records.get(workflow_id, owner)
    if record is None or record.kind != "workflow":
        raise not_found()
    return record


async def plan_from_template(
    request: Request, owner: str, template_id: str, inputs: dict[str, Any], media: list[dict]
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """The inline plan, media references and template snapshot of a template run."""
    template = await templates_of(request).get(owner, template_id)
    if template is None:
        raise not_found("workflow template")
    compiled = compile_template(template, inputs, existing_media=media)
    plan = {"title": compiled["title"], "steps": compiled["steps"]}
    snapshot = {"template": template, "inputs": compiled["inputs"]}
    return plan, [*media, *compiled["media_references"]], snapshot


async def event_stream(
    runtime: WorkflowRuntime, record_id: str, after: int
) -> AsyncIterator[bytes]:
    """Replay after the cursor, then live events; close at a terminal or waiting status."""
    records = runtime.deps.records
    status = await status_before(records, record_id, after + 1)
    if status in STREAM_CLOSES_AT and not await records.events(record_id, after, limit=1):
        return nothing()

    async def frame(event: Event) -> Framed:
        nonlocal status
        status = status_set_by(event) or status
        closes = status in STREAM_CLOSES_AT
        if status == "waiting_for_user":
            closes = await is_latest(records, event)
        return ("workflow", status), partial(runtime.public_event, event, status), closes

    return record_events(records, record_id, after, frame)
