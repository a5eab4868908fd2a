"""What the modes share: the command's context, reading records by id, following an event
stream, uploading media references and delivering results.

Following a stream is the same for workflows and chat runs: read events until the server
closes the stream (or the connection drops), read the record, and reconnect after the last
sequence seen if the record is still queued or running (a dropped connection, or a replayed
pause that has since ended).
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sogni_intelligence.agent_cli.client import ApiClient, ApiError, StreamDropped, path_id
from sogni_intelligence.agent_cli.inputs import UsageError
from sogni_intelligence.agent_cli.output import (
    TERMINAL_STATUSES,
    Reporter,
    event_line,
    report_run_event,
    report_workflow_event,
)
from sogni_intelligence.agent_cli.references import RefSource, resolve

WORKFLOWS = "/v1/creative-agent/workflows"
RUNS = "/v1/chat/runs"
APP_SOURCE = "sogni-agent"
LIVE_STATUSES = frozenset({"queued", "running"})
#: Reconnects in a row that brought no new event before the CLI gives up.
MAX_QUIET_RECONNECTS = 5

RecordKind = Literal["run", "workflow"]


@dataclass
class Context:
    args: argparse.Namespace
    client: ApiClient
    reporter: Reporter
    sources: list[RefSource] = field(default_factory=list)
    workflow_input: dict[str, Any] | None = None
    #: The RunRecord of `--ingest-replay`, read before any request.
    run_record: dict[str, Any] | None = None


def ended_status(kind: str, record: dict[str, Any], reporter: Reporter) -> int:
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
        try:
            for frame in ctx.client.stream(stream_path, cursor):
                if not isinstance(frame.data, dict) or frame.event == "run_status":
                    continue  # heartbeats, and status frames that repeat the real events
                if frame.id is not None and frame.id.isdigit():
                    if cursor is not None and int(frame.id) <= cursor:
                        continue
                    cursor = int(frame.id)
                new_events = True
                on_event(frame.data)
        except StreamDropped as exc:
            where = "from the start" if cursor is None else f"after event {cursor}"
            ctx.reporter.note(f"{exc}; resuming {where}")
        record = read_record()
        status = record.get("status")
        if status not in LIVE_STATUSES:
            return record
        quiet = 0 if new_events else quiet + 1
        if quiet >= MAX_QUIET_RECONNECTS:
            raise ApiError(0, f"the event stream keeps closing while the record is {status}")
        time.sleep(0.5 * (quiet + 1))


# --- records by id ---------------------------------------------------------------------------


def record_kind(record_id: str) -> RecordKind:
    """Chat runs and workflows are told apart by their id prefix."""
    if record_id.startswith("run_"):
        return "run"
    if record_id.startswith("wf_"):
        return "workflow"
    raise UsageError(f"{record_id!r} is neither a run id (run_…) nor a workflow id (wf_…)")


def record_path(kind: RecordKind, record_id: str) -> str:
    return f"{RUNS if kind == 'run' else WORKFLOWS}/{path_id(record_id)}"


def read_record(ctx: Context, kind: RecordKind, record_id: str) -> dict[str, Any]:
    return ctx.client.data("GET", record_path(kind, record_id))[kind]


def read_workflow(ctx: Context, workflow_id: str) -> dict[str, Any]:
    return read_record(ctx, "workflow", workflow_id)


def follow_record(
    ctx: Context, kind: RecordKind, record_id: str, cursor: int | None = None, raw: bool = False
) -> dict[str, Any]:
    """Follow a run's or workflow's SSE stream until it ends; its events become progress,
    or with `raw` one result line each (workflows)."""
    reporter = ctx.reporter

    def on_event(event: dict[str, Any]) -> None:
        if raw:
            reporter.result(event_line(event))
        elif kind == "run":
            report_run_event(reporter, record_id, event)
        else:
            report_workflow_event(reporter, record_id, event)

    return follow(
        ctx,
        f"{record_path(kind, record_id)}/events/stream",
        lambda: read_record(ctx, kind, record_id),
        on_event,
        cursor,
    )


# --- media -----------------------------------------------------------------------------------


def media_references(ctx: Context) -> list[dict[str, Any]]:
    """The command's `media_references`, local files uploaded first."""

    def announce(ref: RefSource) -> None:
        ctx.reporter.note(f"uploading {ref.source} ({ref.flag})")

    refs = resolve(ctx.client, ctx.sources, announce)
    return [ref.model_dump(exclude_none=True) for ref in refs]


def file_stem(*parts: Any) -> str:
    text = "-".join(str(part) for part in parts if part)
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:120] or "artifact"


def deliver(ctx: Context, items: list[tuple[str, str, str]]) -> list[str]:
    """Results as (label, url, file stem): downloaded with `--output`, else listed. The URLs,
    or the saved paths, in order."""
    output: Path | None = ctx.args.output
    delivered = []
    for label, url, stem in items:
        where = url if output is None else str(ctx.client.download(url, output, stem))
        ctx.reporter.result(f"  {label}  {where}")
        delivered.append(where)
    return delivered


def artifacts(record: dict[str, Any]) -> list[tuple[str, str, str]]:
    """A run's or workflow's artifacts that have a URL, as `deliver` items."""
    items = []
    for artifact in record.get("artifacts") or []:
        url = artifact.get("url")
        if isinstance(url, str) and url:
            label = artifact.get("kind") or artifact.get("mediaType") or artifact.get("type")
            stem = file_stem(artifact.get("stepId"), artifact["id"])
            items.append((str(label or "file"), url, stem))
    return items
