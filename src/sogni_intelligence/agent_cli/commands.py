"""One function per mode of `sogni-agent`; each returns the process exit status.

Following a stream is the same for workflows and chat runs: read events until the server
closes the stream, read the record, and reconnect after the last sequence seen if the record
is still queued or running (a dropped connection, or a replayed pause that has since ended).
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sogni_intelligence.agent_cli.client import ApiClient, ApiError, path_id
from sogni_intelligence.agent_cli.output import (
    TERMINAL_STATUSES,
    Reporter,
    completion_media_urls,
    completion_summary,
    event_line,
    models_lines,
    report_run_event,
    report_workflow_event,
    run_summary,
    workflow_summary,
)
from sogni_intelligence.agent_cli.references import RefSource, resolve, url_filename

WORKFLOWS = "/v1/creative-agent/workflows"
RUNS = "/v1/chat/runs"
APP_SOURCE = "sogni-agent"
LIVE_STATUSES = frozenset({"queued", "running"})
#: Reconnects in a row that brought no new event before the CLI gives up.
MAX_QUIET_RECONNECTS = 5


@dataclass
class Context:
    args: argparse.Namespace
    client: ApiClient
    reporter: Reporter
    sources: list[RefSource] = field(default_factory=list)
    workflow_input: dict[str, Any] | None = None


def _ended_status(kind: str, record: dict[str, Any], reporter: Reporter) -> int:
    """Exit status of followed work: 0 when it completed or waits for the user, 1 otherwise."""
    status = record.get("status")
    if status in TERMINAL_STATUSES and status != "completed":
        reporter.note(f"{kind} ended {status}")
        return 1
    return 0


def follow(
    ctx: Context,
    stream_path: str,
    read_record: Callable[[], dict[str, Any]],
    on_event: Callable[[dict[str, Any]], None],
    cursor: int | None = None,
) -> dict[str, Any]:
    """Follow an event stream to its end and return the record as it then stands."""
    quiet = 0
    while True:
        new_events = False
        params = None if cursor is None else {"after": cursor}
        for frame in ctx.client.stream(stream_path, params):
            if not isinstance(frame.data, dict) or frame.event == "run_status":
                continue  # heartbeats, and status frames that repeat the real events
            if frame.id is not None and frame.id.isdigit():
                if cursor is not None and int(frame.id) <= cursor:
                    continue
                cursor = int(frame.id)
            new_events = True
            on_event(frame.data)
        record = read_record()
        status = record.get("status")
        if status not in LIVE_STATUSES:
            return record
        quiet = 0 if new_events else quiet + 1
        if quiet >= MAX_QUIET_RECONNECTS:
            raise ApiError(0, f"the event stream keeps closing while the record is {status}")
        time.sleep(0.5 * (quiet + 1))


# --- media -----------------------------------------------------------------------------------


def _references(ctx: Context) -> list[dict[str, Any]]:
    def announce(ref: RefSource) -> None:
        ctx.reporter.note(f"uploading {ref.source} ({ref.flag})")

    refs = resolve(ctx.client, ctx.sources, announce)
    return [ref.model_dump(exclude_none=True) for ref in refs]


def _stem(*parts: Any) -> str:
    text = "-".join(str(part) for part in parts if part)
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:120] or "artifact"


def _deliver(ctx: Context, items: list[tuple[str, str, str]]) -> None:
    """Results as (label, url, file stem): downloaded with `--output`, else listed."""
    output: Path | None = ctx.args.output
    for label, url, stem in items:
        if output is None:
            ctx.reporter.result(f"  {label}  {url}")
        else:
            path = ctx.client.download(url, output, stem)
            ctx.reporter.result(f"  {label}  {path}")


def _artifacts(record: dict[str, Any]) -> list[tuple[str, str, str]]:
    items = []
    for artifact in record.get("artifacts") or []:
        url = artifact.get("url")
        if isinstance(url, str) and url:
            label = artifact.get("kind") or artifact.get("mediaType") or artifact.get("type")
            items.append((str(label or "file"), url, _stem(artifact.get("stepId"), artifact["id"])))
    return items


# --- workflows -------------------------------------------------------------------------------


def _read_workflow(ctx: Context, workflow_id: str) -> dict[str, Any]:
    return ctx.client.data("GET", f"{WORKFLOWS}/{path_id(workflow_id)}")["workflow"]


def follow_workflow(
    ctx: Context, workflow_id: str, cursor: int | None = None, raw: bool = False
) -> dict[str, Any]:
    """Follow a workflow's SSE stream until it closes; its events become progress, or with
    `raw` one result line each."""
    reporter = ctx.reporter

    def on_event(event: dict[str, Any]) -> None:
        if raw:
            reporter.result(event_line(event))
        else:
            report_workflow_event(reporter, workflow_id, event)

    return follow(
        ctx,
        f"{WORKFLOWS}/{path_id(workflow_id)}/events/stream",
        lambda: _read_workflow(ctx, workflow_id),
        on_event,
        cursor,
    )


def _show_workflow(ctx: Context, workflow: dict[str, Any], followed: bool) -> int:
    reporter = ctx.reporter
    if reporter.json_mode:
        if ctx.args.output is not None:
            _deliver(ctx, _artifacts(workflow))
        reporter.emit(workflow)
    else:
        for line in workflow_summary(workflow):
            reporter.result(line)
        _deliver(ctx, _artifacts(workflow))
    return _ended_status("workflow", workflow, reporter) if followed else 0


def api_workflow(ctx: Context) -> int:
    args = ctx.args
    plan = dict(ctx.workflow_input or {})
    if args.workflow_title:
        plan["title"] = args.workflow_title
    body: dict[str, Any] = {"input": plan, "confirm_cost": args.confirm_cost}
    references = _references(ctx)
    if references:
        body["media_references"] = references
    if args.workflow_max_cost is not None:
        body["max_estimated_capacity_units"] = args.workflow_max_cost
    body["app_source"] = APP_SOURCE
    headers = {}
    if args.workflow_idempotency_key:
        headers["Idempotency-Key"] = args.workflow_idempotency_key
    data = ctx.client.data("POST", WORKFLOWS, body=body, headers=headers)
    workflow = data["workflow"]
    again = " (existing workflow for this idempotency key)" if data.get("idempotent") else ""
    ctx.reporter.note(f"workflow {workflow['workflowId']} {workflow.get('status')}{again}")
    if args.watch_workflow:
        workflow = follow_workflow(ctx, workflow["workflowId"])
    return _show_workflow(ctx, workflow, followed=args.watch_workflow)


def list_workflows(ctx: Context) -> int:
    data = ctx.client.data(
        "GET", WORKFLOWS, params={"limit": ctx.args.limit, "offset": ctx.args.offset}
    )
    if ctx.reporter.json_mode:
        ctx.reporter.emit(data)
        return 0
    for workflow in data.get("workflows") or []:
        created = (workflow.get("timestamps") or {}).get("createdAt", "")
        title = workflow.get("title") or ""
        ctx.reporter.result(
            f"{workflow.get('workflowId')}  {workflow.get('status'):<16} {created}  {title}"
        )
    if data.get("next") is not None:
        ctx.reporter.result(f"(more: --offset {data['next']})")
    return 0


def get_workflow(ctx: Context) -> int:
    return _show_workflow(ctx, _read_workflow(ctx, ctx.args.get_workflow), followed=False)


def workflow_events(ctx: Context) -> int:
    params = {"after": ctx.args.after} if ctx.args.after is not None else None
    data = ctx.client.data(
        "GET", f"{WORKFLOWS}/{path_id(ctx.args.workflow_events)}/events", params=params
    )
    if ctx.reporter.json_mode:
        ctx.reporter.emit(data)
    else:
        for event in data.get("events") or []:
            ctx.reporter.result(event_line(event))
    return 0


def stream_workflow(ctx: Context) -> int:
    workflow = follow_workflow(
        ctx, ctx.args.stream_workflow, ctx.args.after, raw=not ctx.reporter.json_mode
    )
    return _show_workflow(ctx, workflow, followed=True)


def cancel_workflow(ctx: Context) -> int:
    workflow_id = ctx.args.cancel_workflow
    data = ctx.client.data("POST", f"{WORKFLOWS}/{path_id(workflow_id)}/cancel", body={})
    if not data.get("transitioned"):
        ctx.reporter.note(f"workflow {workflow_id} had already ended; nothing to cancel")
    return _show_workflow(ctx, data["workflow"], followed=False)


def resume_workflow(ctx: Context) -> int:
    workflow_id = ctx.args.resume_workflow
    cursor = None
    if ctx.args.watch_workflow:
        # Follow only what happens from now on, not the pause that is being released.
        events = ctx.client.data("GET", f"{WORKFLOWS}/{path_id(workflow_id)}/events")["events"]
        cursor = max((int(e["sequence"]) for e in events), default=None)
    data = ctx.client.data(
        "POST", f"{WORKFLOWS}/{path_id(workflow_id)}/resume", body={"app_source": APP_SOURCE}
    )
    workflow = data["workflow"]
    if not data.get("resumed"):
        ctx.reporter.note(f"workflow {workflow_id} is {workflow.get('status')}: nothing to resume")
        return _show_workflow(ctx, workflow, followed=False)
    ctx.reporter.note(f"workflow {workflow_id} resumed")
    if ctx.args.watch_workflow:
        workflow = follow_workflow(ctx, workflow_id, cursor)
    return _show_workflow(ctx, workflow, followed=ctx.args.watch_workflow)


# --- chat ------------------------------------------------------------------------------------


def _messages(args: argparse.Namespace, prompt: str) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": args.system}] if args.system else []
    return [*messages, {"role": "user", "content": prompt}]


def api_chat(ctx: Context) -> int:
    args, reporter = ctx.args, ctx.reporter
    body: dict[str, Any] = {
        "messages": _messages(args, args.api_chat),
        "stream": False,
        "sogni_tools": args.api_tools or "creative-agent",
        "sogni_tool_execution": not args.no_api_tool_execution,
        "app_source": APP_SOURCE,
    }
    optional = {
        "model": args.llm_model,
        "task_profile": args.task_profile,
        "max_tokens": args.max_tokens,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    if args.thinking is not None:
        body["chat_template_kwargs"] = {"enable_thinking": args.thinking}
    references = _references(ctx)
    if references:
        body["media_references"] = references
    reporter.note("waiting for the model (hosted tools run inside this request)...")
    completion = ctx.client.request("POST", "/v1/chat/completions", body=body)
    items = [
        ("media", url, _stem(Path(url_filename(url) or f"result-{n}").stem))
        for n, url in enumerate(completion_media_urls(completion), start=1)
    ]
    if args.watch_workflow:
        for started in completion.get("creative_workflows") or []:
            workflow = _read_workflow(ctx, started["workflowId"])
            if workflow.get("status") in LIVE_STATUSES:
                workflow = follow_workflow(ctx, started["workflowId"])
            known = {url for _, url, _ in items}
            items += [item for item in _artifacts(workflow) if item[1] not in known]
    if reporter.json_mode:
        if args.output is not None:
            _deliver(ctx, items)
        reporter.emit(completion)
        return 0
    for line in completion_summary(completion):
        reporter.result(line)
    _deliver(ctx, items)
    return 0


def _read_run(ctx: Context, run_id: str) -> dict[str, Any]:
    return ctx.client.data("GET", f"{RUNS}/{path_id(run_id)}")["run"]


def durable_chat(ctx: Context) -> int:
    args, reporter = ctx.args, ctx.reporter
    body: dict[str, Any] = {
        "messages": _messages(args, args.durable_chat),
        "app_source": APP_SOURCE,
    }
    optional = {
        "model": args.llm_model,
        "sogni_tools": args.api_tools,
        "task_profile": args.task_profile,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    if args.max_tokens is not None:
        body["sampling"] = {"max_tokens": args.max_tokens}
    references = _references(ctx)
    if references:
        body["media_references"] = references
    if args.workflow_max_cost is not None:
        body["max_estimated_capacity_units"] = args.workflow_max_cost
    if args.confirm_cost:
        body["confirm_cost"] = True
    headers = {}
    if args.workflow_idempotency_key:
        headers["Idempotency-Key"] = args.workflow_idempotency_key
    run = ctx.client.data("POST", RUNS, body=body, headers=headers)["run"]
    run_id = run["runId"]
    reporter.note(f"run {run_id} {run.get('status')}", once=True)
    run = follow(
        ctx,
        f"{RUNS}/{path_id(run_id)}/events/stream",
        lambda: _read_run(ctx, run_id),
        lambda event: report_run_event(reporter, run_id, event),
    )
    if reporter.json_mode:
        if args.output is not None:
            _deliver(ctx, _artifacts(run))
        reporter.emit(run)
    else:
        for line in run_summary(run):
            reporter.result(line)
        _deliver(ctx, _artifacts(run))
    return _ended_status("run", run, reporter)


# --- models ----------------------------------------------------------------------------------


def list_api_models(ctx: Context) -> int:
    body = ctx.client.request("GET", "/v1/models")
    if ctx.reporter.json_mode:
        ctx.reporter.emit(body)
    else:
        for line in models_lines(body.get("data") or []):
            ctx.reporter.result(line)
    return 0


def get_api_model(ctx: Context) -> int:
    body = ctx.client.request("GET", f"/v1/models/{path_id(ctx.args.get_api_model)}")
    if ctx.reporter.json_mode:
        ctx.reporter.emit(body)
    else:
        for line in models_lines([body]):
            ctx.reporter.result(line)
    return 0


COMMANDS: dict[str, Callable[[Context], int]] = {
    "api_chat": api_chat,
    "durable_chat": durable_chat,
    "api_workflow": api_workflow,
    "list_workflows": list_workflows,
    "get_workflow": get_workflow,
    "workflow_events": workflow_events,
    "stream_workflow": stream_workflow,
    "cancel_workflow": cancel_workflow,
    "resume_workflow": resume_workflow,
    "list_api_models": list_api_models,
    "get_api_model": get_api_model,
}
