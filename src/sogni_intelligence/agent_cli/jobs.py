"""Modes that pick up work started earlier (by `--detach`, another process or another
client): `--status`, `--result [--wait]` and `--recent`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sogni_intelligence.agent_cli.commands import show_record
from sogni_intelligence.agent_cli.failures import EXIT_NOT_FINISHED, CliFailure, Failure
from sogni_intelligence.agent_cli.output import TERMINAL_STATUSES, run_summary, workflow_summary
from sogni_intelligence.agent_cli.session import (
    LIVE_STATUSES,
    RUNS,
    WORKFLOWS,
    Context,
    RecordKind,
    follow_record,
    read_record,
    record_kind,
)

#: Records asked for per page while paging back through `--recent`'s window.
RECENT_PAGE = 50
TITLE_CHARS = 72
KINDS: tuple[RecordKind, ...] = ("run", "workflow")


def created_at(record: dict[str, Any]) -> datetime | None:
    """When a run or workflow was created (naive times are taken as UTC)."""
    text = (record.get("timestamps") or {}).get("createdAt") or record.get("createTime")
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def record_id(kind: RecordKind, record: dict[str, Any]) -> str:
    return str(record.get("runId" if kind == "run" else "workflowId"))


def title_of(kind: RecordKind, record: dict[str, Any]) -> str:
    """A workflow's title, or the last user message of a run, on one short line."""
    if kind == "workflow":
        text = record.get("title") or (record.get("input") or {}).get("title") or ""
    else:
        messages = (record.get("request") or {}).get("messages") or []
        users = [m.get("content") for m in messages if m.get("role") == "user"]
        text = users[-1] if users and isinstance(users[-1], str) else ""
    text = " ".join(str(text).split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"


def status_lines(kind: RecordKind, record: dict[str, Any]) -> list[str]:
    """Where a run or workflow stands, and the command that picks it up next."""
    rid = record_id(kind, record)
    status = record.get("status")
    if kind == "workflow":
        lines = workflow_summary(record)
    else:
        lines = run_summary(record, answer=False)
        calls = len(record.get("toolCalls") or [])
        lines.append(f"  tool calls: {calls}")
    times = record.get("timestamps") or {}
    lines.append(f"  created {times.get('createdAt')}, updated {times.get('updatedAt')}")
    count = len(record.get("artifacts") or [])
    if count:
        lines.append(f"  artifacts: {count}")
    if status in LIVE_STATUSES:
        lines.append(f"  wait for it: sogni-agent --result {rid} --wait")
    elif status in TERMINAL_STATUSES:
        lines.append(f"  results: sogni-agent --result {rid} [--output DIR]")
    return lines


def status(ctx: Context) -> int:
    kind = record_kind(ctx.args.status)
    record = read_record(ctx, kind, ctx.args.status)
    if ctx.reporter.json_mode:
        ctx.reporter.emit(record)
    else:
        for line in status_lines(kind, record):
            ctx.reporter.result(line)
    return 0


def not_finished(kind: RecordKind, record: dict[str, Any], waited: bool) -> Failure:
    """`--result` of a record that has no final result yet (exit status 3)."""
    rid = record_id(kind, record)
    state = record.get("status")
    if state == "waiting_for_user" and kind == "workflow":
        hint = f"it waits for the user: sogni-agent --resume-workflow {rid} --watch-workflow"
    elif state == "waiting_for_user":
        hint = f"it waits for the user: see sogni-agent --status {rid}"
    elif waited:
        hint = f"the stream ended early: retry sogni-agent --result {rid} --wait"
    else:
        hint = f"wait for it with: sogni-agent --result {rid} --wait"
    message = f"{kind} {rid} is not finished yet (status {state})"
    retryable = state != "waiting_for_user"
    extra = {"id": rid, "status": state}
    return Failure(message, "not_finished", retryable, hint, EXIT_NOT_FINISHED, extra)


def result(ctx: Context) -> int:
    kind = record_kind(ctx.args.result)
    record = read_record(ctx, kind, ctx.args.result)
    if ctx.args.wait and record.get("status") in LIVE_STATUSES:
        record = follow_record(ctx, kind, ctx.args.result)
    if record.get("status") not in TERMINAL_STATUSES:
        raise CliFailure(not_finished(kind, record, ctx.args.wait))
    return show_record(ctx, kind, record, followed=True)


# --- --recent --------------------------------------------------------------------------------


def created_since(
    ctx: Context, kind: RecordKind, since: datetime, statuses: str | None
) -> list[dict[str, Any]]:
    """The key's runs or workflows created after `since`, paging back (lists are newest
    first) until a record is older."""
    path, key = (RUNS, "runs") if kind == "run" else (WORKFLOWS, "workflows")
    found: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        params: dict[str, Any] = {"limit": RECENT_PAGE, "offset": offset}
        if statuses:
            params["status"] = statuses
        data = ctx.client.data("GET", path, params=params)
        for record in data.get(key) or []:
            moment = created_at(record)
            if moment is not None and moment < since:
                return found
            found.append(record)
        offset = data.get("next")
    return found


def recent_item(kind: RecordKind, record: dict[str, Any]) -> dict[str, Any]:
    times = record.get("timestamps") or {}
    return {
        "kind": kind,
        "id": record_id(kind, record),
        "status": record.get("status"),
        "createdAt": times.get("createdAt"),
        "updatedAt": times.get("updatedAt"),
        "title": title_of(kind, record),
    }


def recent(ctx: Context) -> int:
    hours: float = ctx.args.recent
    since = datetime.now(UTC) - timedelta(hours=hours)
    pairs = [
        (kind, record)
        for kind in KINDS
        for record in created_since(ctx, kind, since, ctx.args.status_filter)
    ]
    epoch = datetime.min.replace(tzinfo=UTC)
    pairs.sort(key=lambda pair: created_at(pair[1]) or epoch, reverse=True)
    items = [recent_item(kind, record) for kind, record in pairs]
    if ctx.reporter.json_mode:
        ctx.reporter.emit({"hours": hours, "since": since.isoformat(), "records": items})
        return 0
    if not items:
        ctx.reporter.result(f"no runs or workflows in the last {hours:g} h")
    for item in items:
        ctx.reporter.result(
            f"{item['id']}  {item['kind']:<8} {item['status']:<16} {item['createdAt']}  "
            f"{item['title']}".rstrip()
        )
    return 0
