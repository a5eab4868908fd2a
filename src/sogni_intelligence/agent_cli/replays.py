"""Replay records: finished runs kept (redacted) by the server so that they can be read back,
compared or re-run. `/v1/replay/records` answers bare JSON, without the `data` envelope."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sogni_intelligence.agent_cli.client import path_id
from sogni_intelligence.agent_cli.session import Context

REPLAYS = "/v1/replay/records"
TEXT_CHARS = 72


def _when(millis: Any) -> str:
    """A `createTime` (milliseconds since the epoch) as an ISO time."""
    if not isinstance(millis, int | float):
        return "?"
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="seconds")


def _short(text: Any) -> str:
    line = " ".join(str(text or "").split())
    return line if len(line) <= TEXT_CHARS else line[: TEXT_CHARS - 1] + "…"


def list_replays(ctx: Context) -> int:
    body = ctx.client.request("GET", REPLAYS, params={"limit": ctx.args.limit})
    if ctx.reporter.json_mode:
        ctx.reporter.emit(body)
        return 0
    records = body.get("records") or []
    if not records:
        ctx.reporter.result("no replay records")
    for record in records:
        ctx.reporter.result(
            f"{record.get('runId')}  {_when(record.get('createTime'))}  "
            f"{record.get('modelId') or '-'}  rounds {record.get('rounds', 0)}  "
            f"{_short(record.get('userRequest'))}".rstrip()
        )
    return 0


def replay_lines(record: dict[str, Any], created: Any) -> list[str]:
    """A RunRecord for people: what was asked, each round's tool calls, how it ended."""
    lines = [
        f"replay {record.get('run_id')}  {_when(created)}  "
        f"model {record.get('model_id') or '-'}  schema {record.get('schema_version', '-')}",
        f"  request:  {_short(record.get('user_request'))}",
    ]
    for number, round_ in enumerate(record.get("rounds") or []):
        if not isinstance(round_, dict):
            continue
        names = [str(call.get("name")) for call in round_.get("tool_calls") or []]
        calls = f": {', '.join(names)}" if names else ""
        lines.append(f"  round {round_.get('round', number)}  {len(names)} tool calls{calls}")
    lines.append(f"  response: {_short(record.get('final_response'))}")
    return lines


def get_replay(ctx: Context) -> int:
    body = ctx.client.request("GET", f"{REPLAYS}/{path_id(ctx.args.get_replay)}")
    if ctx.reporter.json_mode:
        ctx.reporter.emit(body)
    else:
        for line in replay_lines(body.get("record") or {}, body.get("createTime")):
            ctx.reporter.result(line)
    return 0


def ingest_replay(ctx: Context) -> int:
    body = ctx.client.request("POST", REPLAYS, body=ctx.run_record)
    if ctx.reporter.json_mode:
        ctx.reporter.emit(body)
    else:
        redacted = ", redacted" if body.get("redacted") else ""
        ctx.reporter.result(
            f"stored replay {body.get('runId')} (schema {body.get('schemaVersion')}{redacted})"
        )
    return 0
