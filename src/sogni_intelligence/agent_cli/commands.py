"""The modes that start and manage work: workflows, chat completions, durable chat runs and
the model list. Each returns the process exit status."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sogni_intelligence.agent_cli import presets
from sogni_intelligence.agent_cli.client import path_id
from sogni_intelligence.agent_cli.output import (
    completion_media_urls,
    completion_summary,
    event_line,
    models_lines,
    run_summary,
    workflow_summary,
)
from sogni_intelligence.agent_cli.references import url_filename
from sogni_intelligence.agent_cli.session import (
    APP_SOURCE,
    LIVE_STATUSES,
    RUNS,
    WORKFLOWS,
    Context,
    RecordKind,
    artifacts,
    deliver,
    ended_status,
    file_stem,
    follow_record,
    media_references,
    read_workflow,
)


def detached(ctx: Context, kind: RecordKind, record: dict[str, Any]) -> int:
    """`--detach`: the id (or, with `--json`, the record as started) and how to pick it up."""
    record_id = record["runId" if kind == "run" else "workflowId"]
    ctx.reporter.note(f"follow it with: sogni-agent --result {record_id} --wait")
    if ctx.reporter.json_mode:
        ctx.reporter.emit(record)
    else:
        ctx.reporter.result(record_id)
    return 0


def show_record(ctx: Context, kind: RecordKind, record: dict[str, Any], followed: bool) -> int:
    """A run or workflow as the result of a mode: summary and artifacts, or the record."""
    reporter = ctx.reporter
    if reporter.json_mode:
        if ctx.args.output is not None:
            deliver(ctx, artifacts(record))
        reporter.emit(record)
    else:
        summary = run_summary if kind == "run" else workflow_summary
        for line in summary(record):
            reporter.result(line)
        deliver(ctx, artifacts(record))
    return ended_status(kind, record, reporter) if followed else 0


# --- workflows -------------------------------------------------------------------------------


def _preset_plan(ctx: Context) -> dict[str, Any]:
    """The workflow input of `--api-workflow`: the given plan or the preset's."""
    args = ctx.args
    if args.api_workflow == "image-to-video":
        return presets.image_to_video(args.workflow_prompt, ctx.sources, args.keyframe or [])
    if args.api_workflow == "storyboard-video":
        count = args.scenes or presets.DEFAULT_SCENES
        ctx.reporter.note(f"asking the model for a {count}-scene storyboard...")
        request = presets.storyboard_request(
            args.workflow_prompt, count, args.llm_model, not args.no_filter
        )
        completion = ctx.client.request("POST", "/v1/chat/completions", body=request)
        scenes = presets.storyboard_scenes(completion, count)
        return presets.storyboard_video(scenes, "Storyboard video")
    return dict(ctx.workflow_input or {})


def api_workflow(ctx: Context) -> int:
    args = ctx.args
    plan = _preset_plan(ctx)
    if args.workflow_title:
        plan["title"] = args.workflow_title
    body: dict[str, Any] = {"input": plan, "confirm_cost": args.confirm_cost}
    references = media_references(ctx)
    if references:
        body["media_references"] = references
    if args.workflow_max_cost is not None:
        body["max_estimated_capacity_units"] = args.workflow_max_cost
    if args.no_filter:
        body["safeContentFilter"] = False
    body["app_source"] = APP_SOURCE
    headers = {}
    if args.workflow_idempotency_key:
        headers["Idempotency-Key"] = args.workflow_idempotency_key
    data = ctx.client.data("POST", WORKFLOWS, body=body, headers=headers)
    workflow = data["workflow"]
    again = " (existing workflow for this idempotency key)" if data.get("idempotent") else ""
    ctx.reporter.note(f"workflow {workflow['workflowId']} {workflow.get('status')}{again}")
    if args.detach:
        return detached(ctx, "workflow", workflow)
    if args.watch_workflow:
        workflow = follow_record(ctx, "workflow", workflow["workflowId"])
    return show_record(ctx, "workflow", workflow, followed=args.watch_workflow)


def list_workflows(ctx: Context) -> int:
    params: dict[str, Any] = {"limit": ctx.args.limit, "offset": ctx.args.offset}
    if ctx.args.status_filter:
        params["status"] = ctx.args.status_filter
    data = ctx.client.data("GET", WORKFLOWS, params=params)
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
    return show_record(ctx, "workflow", read_workflow(ctx, ctx.args.get_workflow), followed=False)


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
    workflow = follow_record(
        ctx, "workflow", ctx.args.stream_workflow, ctx.args.after, raw=not ctx.reporter.json_mode
    )
    return show_record(ctx, "workflow", workflow, followed=True)


def cancel_workflow(ctx: Context) -> int:
    workflow_id = ctx.args.cancel_workflow
    data = ctx.client.data("POST", f"{WORKFLOWS}/{path_id(workflow_id)}/cancel", body={})
    if not data.get("transitioned"):
        ctx.reporter.note(f"workflow {workflow_id} had already ended; nothing to cancel")
    return show_record(ctx, "workflow", data["workflow"], followed=False)


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
        return show_record(ctx, "workflow", workflow, followed=False)
    ctx.reporter.note(f"workflow {workflow_id} resumed")
    if ctx.args.watch_workflow:
        workflow = follow_record(ctx, "workflow", workflow_id, cursor)
    return show_record(ctx, "workflow", workflow, followed=ctx.args.watch_workflow)


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
    if args.no_filter:
        body["safeContentFilter"] = False
    references = media_references(ctx)
    if references:
        body["media_references"] = references
    reporter.note("waiting for the model (hosted tools run inside this request)...")
    completion = ctx.client.request("POST", "/v1/chat/completions", body=body)
    items = [
        ("media", url, file_stem(Path(url_filename(url) or f"result-{n}").stem))
        for n, url in enumerate(completion_media_urls(completion), start=1)
    ]
    if args.watch_workflow:
        for started in completion.get("creative_workflows") or []:
            workflow = read_workflow(ctx, started["workflowId"])
            if workflow.get("status") in LIVE_STATUSES:
                workflow = follow_record(ctx, "workflow", started["workflowId"])
            known = {url for _, url, _ in items}
            items += [item for item in artifacts(workflow) if item[1] not in known]
    if reporter.json_mode:
        if args.output is not None:
            deliver(ctx, items)
        reporter.emit(completion)
        return 0
    for line in completion_summary(completion):
        reporter.result(line)
    deliver(ctx, items)
    return 0


def start_run(ctx: Context, body: dict[str, Any]) -> int:
    """Start a durable chat run and follow it to its end (or, with `--detach`, not)."""
    args, reporter = ctx.args, ctx.reporter
    headers = {}
    if args.workflow_idempotency_key:
        headers["Idempotency-Key"] = args.workflow_idempotency_key
    run = ctx.client.data("POST", RUNS, body=body, headers=headers)["run"]
    run_id = run["runId"]
    reporter.note(f"run {run_id} {run.get('status')}", once=True)
    if args.detach:
        return detached(ctx, "run", run)
    run = follow_record(ctx, "run", run_id)
    return show_record(ctx, "run", run, followed=True)


def durable_chat(ctx: Context) -> int:
    args = ctx.args
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
    references = media_references(ctx)
    if references:
        body["media_references"] = references
    if args.workflow_max_cost is not None:
        body["max_estimated_capacity_units"] = args.workflow_max_cost
    if args.confirm_cost:
        body["confirm_cost"] = True
    if args.no_filter:
        body["runtime_config"] = {"safeContentFilter": False}
    return start_run(ctx, body)


def fork_run(ctx: Context) -> int:
    """A run that continues another run's history after one of its events."""
    args = ctx.args
    run_id, *prompt = args.fork_run
    body: dict[str, Any] = {
        "fork_from": {"run_id": run_id, "after_sequence": args.after},
        "messages": [{"role": "user", "content": text} for text in prompt],
        "app_source": APP_SOURCE,
    }
    if args.replay:
        body["replay"] = True
    if args.llm_model is not None:
        body["model"] = args.llm_model
    if args.max_tokens is not None:
        body["sampling"] = {"max_tokens": args.max_tokens}
    return start_run(ctx, body)


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
