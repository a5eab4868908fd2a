"""Routes of `/v1/creative-agent/workflows` and `/v1/creative-agent/workflows/templates`.

Template routes come first so that `templates` is never read as a workflow id.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from sogni_intelligence.api.auth import CurrentKey, readable_owner
from sogni_intelligence.api.billing import RequestBilling
from sogni_intelligence.api.errors import SogniRoute
from sogni_intelligence.api.record_lists import Offset, Scope, StatusFilter, listed
from sogni_intelligence.api.sse import SSE_HEADERS, After, cursor
from sogni_intelligence.api.state import server_of
from sogni_intelligence.api.workflows import serving
from sogni_intelligence.api.workflows.protocol import (
    CancelBody,
    ConfirmCostBody,
    ForkBody,
    InputBody,
    ReseedBody,
    ResumeBody,
    StartWorkflowBody,
    TemplateBody,
    TemplatePatchBody,
)
from sogni_intelligence.store.records import Record

router = APIRouter(route_class=SogniRoute, tags=["workflows"])
BASE = "/v1/creative-agent/workflows"
CONFIRM_ENDPOINT = "workflows.confirm-cost"


def _ok(data: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse({"status": "success", "data": data}, status)


# --- templates --------------------------------------------------------------------------------


@router.get(f"{BASE}/templates")
async def list_templates(
    request: Request,
    key: CurrentKey,
    visibility: str = "own",
    offset: Offset = 0,
    limit: int = Query(50, ge=1, le=200),
) -> JSONResponse:
    templates, next_offset = await serving.templates_of(request).list(
        key.id, visibility, offset, limit
    )
    return _ok({"templates": templates, "next": next_offset, "next_cursor": next_offset})


@router.post(f"{BASE}/templates")
async def create_template(body: TemplateBody, request: Request, key: CurrentKey) -> JSONResponse:
    return _ok({"template": await serving.templates_of(request).create(key.id, body.root)}, 201)


@router.get(f"{BASE}/templates/{{template_id}}")
async def get_template(template_id: str, request: Request, key: CurrentKey) -> JSONResponse:
    template = await serving.templates_of(request).get(key.id, template_id)
    if template is None:
        raise serving.not_found("workflow template")
    return _ok({"template": template})


@router.patch(f"{BASE}/templates/{{template_id}}")
async def update_template(
    template_id: str, body: TemplatePatchBody, request: Request, key: CurrentKey
) -> JSONResponse:
    templates = serving.templates_of(request)
    return _ok({"template": await templates.update(key.id, template_id, body.root)})


@router.delete(f"{BASE}/templates/{{template_id}}")
async def delete_template(template_id: str, request: Request, key: CurrentKey) -> JSONResponse:
    if not await serving.templates_of(request).delete(key.id, template_id):
        raise serving.not_found("workflow template")
    return _ok({"deleted": True, "id": template_id})


@router.post(f"{BASE}/templates/{{template_id}}/fork")
async def fork_template(
    template_id: str, body: ForkBody, request: Request, key: CurrentKey
) -> JSONResponse:
    forked = await serving.templates_of(request).fork(key.id, template_id, body.new_name)
    return _ok({"template": forked}, 201)


# --- workflows --------------------------------------------------------------------------------


@router.post(BASE)
async def start_workflow(
    body: StartWorkflowBody,
    request: Request,
    key: CurrentKey,
    headers: RequestBilling,
    idempotency_key: str | None = Header(None, max_length=255),
) -> JSONResponse:
    await server_of(request).usage.admit_record(key)
    runtime = serving.runtime_of(request)
    media = body.media_references or []
    options = body.options(headers)
    if body.workflow_id is not None:
        raw_input, media, snapshot = await serving.plan_from_template(
            request, key.id, body.workflow_id, body.inputs or {}, media
        )
        options["template"] = snapshot
    else:
        raw_input = body.input or {}
    record, replayed = await runtime.start(
        key.id,
        raw_input,
        media,
        options=options,
        idempotency=None if idempotency_key is None else (idempotency_key, body.model_dump()),
        max_units=body.max_estimated_capacity_units,
        confirm_cost=body.confirm_cost,
    )
    data: dict[str, Any] = {"workflow": await runtime.public(record)}
    if replayed:
        data["idempotent"] = True
    return _ok(data, 200 if replayed else 201)


@router.get(BASE)
async def list_workflows(
    request: Request,
    key: CurrentKey,
    offset: Offset = 0,
    limit: int = Query(20, ge=1, le=200),
    status: StatusFilter = None,
    scope: Scope = "own",
) -> JSONResponse:
    runtime = serving.runtime_of(request)
    records, next_offset = await listed(
        runtime.deps.records, "workflow", key, offset, limit, status, scope
    )
    return _ok({"workflows": [await runtime.public(r) for r in records], "next": next_offset})


@router.get(f"{BASE}/{{workflow_id}}")
async def get_workflow(workflow_id: str, request: Request, key: CurrentKey) -> JSONResponse:
    record = await serving.owned_workflow(request, readable_owner(key), workflow_id)
    return _ok({"workflow": await serving.runtime_of(request).public(record)})


@router.get(f"{BASE}/{{workflow_id}}/events")
async def workflow_events(
    workflow_id: str, request: Request, key: CurrentKey, after: After = None
) -> JSONResponse:
    record = await serving.owned_workflow(request, readable_owner(key), workflow_id)
    runtime = serving.runtime_of(request)
    events = await runtime.public_events(record.id, cursor(after, None))
    return _ok({"events": events})


@router.get(f"{BASE}/{{workflow_id}}/events/stream")
async def stream_workflow_events(
    workflow_id: str,
    request: Request,
    key: CurrentKey,
    after: After = None,
    last_event_id: str | None = Header(None),
) -> StreamingResponse:
    record = await serving.owned_workflow(request, readable_owner(key), workflow_id)
    stream = await serving.event_stream(
        serving.runtime_of(request), record.id, cursor(after, last_event_id)
    )
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)


@router.post(f"{BASE}/{{workflow_id}}/cancel")
async def cancel_workflow(
    workflow_id: str, request: Request, key: CurrentKey, body: CancelBody | None = None
) -> JSONResponse:
    runtime = serving.runtime_of(request)
    record = await serving.owned_workflow(request, readable_owner(key), workflow_id)
    record, transitioned = await runtime.cancel(record, (body or CancelBody()).reason)
    return _ok({"workflow": await runtime.public(record), "transitioned": transitioned})


@router.post(f"{BASE}/{{workflow_id}}/resume")
async def resume_workflow(
    workflow_id: str,
    request: Request,
    key: CurrentKey,
    headers: RequestBilling,
    body: ResumeBody | None = None,
) -> JSONResponse:
    runtime = serving.runtime_of(request)
    record = await serving.owned_workflow(request, key.id, workflow_id)
    record, resumed = await runtime.resume(record, (body or ResumeBody()).billing(headers))
    return _ok({"workflow": await runtime.public(record), "resumed": resumed}, 202)


@router.post(f"{BASE}/{{workflow_id}}/input")
async def answer_workflow_input(
    workflow_id: str, body: InputBody, request: Request, key: CurrentKey
) -> JSONResponse:
    runtime = serving.runtime_of(request)
    record = await serving.owned_workflow(request, key.id, workflow_id)
    record = await runtime.answer(record, body.answer, body.step_id)
    return _ok({"workflow": await runtime.public(record), "accepted": True})


@router.post(f"{BASE}/{{workflow_id}}/reseed")
async def reseed_workflow(
    workflow_id: str,
    request: Request,
    key: CurrentKey,
    headers: RequestBilling,
    body: ReseedBody | None = None,
    idempotency_key: str | None = Header(None, max_length=255),
) -> JSONResponse:
    runtime = serving.runtime_of(request)
    body = body or ReseedBody()
    record = await serving.owned_workflow(request, key.id, workflow_id)
    clone, seeds, replayed = await runtime.reseed(
        key.id,
        record,
        body.seed_overrides,
        None
        if idempotency_key is None
        else (idempotency_key, {"from": record.id, **body.model_dump()}),
        body.billing(headers),
    )
    data: dict[str, Any] = {
        "workflow": await runtime.public(clone),
        "reseed": {"cloned_from_run_id": record.id, "steps": seeds},
    }
    if replayed:
        data["idempotent"] = True
    return _ok(data, 200 if replayed else 201)


@router.post(f"{BASE}/{{workflow_id}}/confirm-cost")
async def confirm_workflow_cost(
    workflow_id: str,
    body: ConfirmCostBody,
    request: Request,
    key: CurrentKey,
    idempotency_key: str | None = Header(None, max_length=255),
) -> JSONResponse:
    runtime = serving.runtime_of(request)
    record = await serving.owned_workflow(request, key.id, workflow_id)

    async def confirm() -> tuple[Record, bool]:
        preview = record.data.get("billingPreview")
        if record.data.get("awaitingCostApproval") and body.decision == "confirm":
            if body.accepted_cost_preview is None:
                raise serving.invalid("acceptedCostPreview is required to confirm a cost")
            if body.accepted_cost_preview != preview:
                raise serving.conflict(
                    "the cost preview changed; read the workflow and confirm again"
                )
        return await runtime.confirm_cost(record, body.decision)

    # A retry with the same key does nothing again, even once the preview has gone stale.
    done = await runtime.deps.records.once(
        key.id, CONFIRM_ENDPOINT, idempotency_key, record.id, body.model_dump(), confirm
    )
    if done is None:
        replay = {"workflow": await runtime.public(record), "confirmed": True, "idempotent": True}
        return _ok(replay)
    moved, confirmed = done
    return _ok({"workflow": await runtime.public(moved), "confirmed": confirmed})
