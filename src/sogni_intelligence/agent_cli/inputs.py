"""What the command line and the environment give the CLI, checked before any request."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from pydantic import BaseModel

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
#: Seconds to wait for an answer when neither --timeout nor SOGNI_HTTP_TIMEOUT_MS says.
DEFAULT_TIMEOUT_S = 300.0


class UsageError(Exception):
    """A mistake in the command line or the configuration (exit status 2)."""


class Connection(BaseModel):
    base_url: str
    api_key: str
    timeout_s: float = DEFAULT_TIMEOUT_S


def host_allowed(base_url: str, allowed: str) -> bool:
    """Whether the host of `base_url` is on `SOGNI_API_ALLOWED_HOSTS`: comma-separated host
    names, `host:port` pairs or `*.domain` wildcards, in any case."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    for entry in (e.strip().lower() for e in allowed.split(",")):
        if entry.startswith("*."):
            if host.endswith(entry[1:]):
                return True
        elif entry in (host, f"{host}:{port}"):
            return True
    return False


def timeout_seconds(flag: float | None, env: Mapping[str, str]) -> float:
    """`--timeout` in seconds, else `SOGNI_HTTP_TIMEOUT_MS` in milliseconds, else 300 s."""
    if flag is not None:
        return flag
    text = env.get("SOGNI_HTTP_TIMEOUT_MS", "").strip()
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        milliseconds = float(text)
    except ValueError:
        milliseconds = 0.0
    if not 0 < milliseconds < float("inf"):
        raise UsageError(f"SOGNI_HTTP_TIMEOUT_MS must be a positive number, got {text!r}")
    return milliseconds / 1000


def connection(
    api_base_url: str | None,
    api_key: str | None,
    env: Mapping[str, str],
    *,
    require_key: bool = True,
    timeout: float | None = None,
) -> Connection:
    """Base URL from the flag, `SOGNI_API_BASE_URL`, `SOGNI_REST_ENDPOINT` or the local
    default, refused when `SOGNI_API_ALLOWED_HOSTS` is set and does not list its host (before
    the key goes anywhere); key from the flag or `SOGNI_API_KEY` (may be empty only without
    `require_key`, for `--doctor`, which reports a missing key itself); request timeout from
    `timeout` or the environment."""
    base = (
        api_base_url
        or env.get("SOGNI_API_BASE_URL")
        or env.get("SOGNI_REST_ENDPOINT")
        or DEFAULT_BASE_URL
    ).strip()
    parts = urlsplit(base)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise UsageError(f"the API base URL must be an http(s) URL, got {base!r}")
    allowed = env.get("SOGNI_API_ALLOWED_HOSTS", "").strip()
    if allowed and not host_allowed(base, allowed):
        raise UsageError(
            f"the API host {parts.netloc} is not in SOGNI_API_ALLOWED_HOSTS; the key was not sent"
        )
    key = (api_key or env.get("SOGNI_API_KEY") or "").strip()
    if not key and require_key:
        raise UsageError("no API key: pass --api-key or set SOGNI_API_KEY")
    return Connection(
        base_url=base.rstrip("/"), api_key=key, timeout_s=timeout_seconds(timeout, env)
    )


def read_input_file(name: str, flag: str, stdin: TextIO = sys.stdin) -> tuple[str, str]:
    """The text of file `name` (`-`: standard input) and how errors should name it."""
    if name == "-":
        return stdin.read(), f"{flag} on stdin"
    try:
        return Path(name).expanduser().read_text(encoding="utf-8"), name
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {flag} file {name}: {exc}") from exc


def parse_json_object(text: str, source: str, shape: str) -> dict[str, Any]:
    """`text` as a JSON object; `shape` tells the user what the object should be."""
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source} is not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise UsageError(f"{source} must be a JSON object: {shape}")
    return parsed


def load_workflow_input(value: str, stdin: TextIO = sys.stdin) -> dict[str, Any]:
    """`--workflow-input`: the workflow `input` object `{title?, steps}` as JSON text, as
    `@path` to a JSON file, or as `@-` to read it from standard input."""
    if value.startswith("@"):
        name = value[1:]
        if not name:
            raise UsageError("--workflow-input @ needs a file name (or @- for stdin)")
        text, source = read_input_file(name, "--workflow-input", stdin)
    else:
        text, source = value, "--workflow-input"
    return parse_json_object(text, source, "the workflow input {title?, steps}")


def load_run_record(name: str, stdin: TextIO = sys.stdin) -> dict[str, Any]:
    """`--ingest-replay`: a RunRecord `{run_id, schema_version?, model_id?, user_request?,
    final_response?, rounds?}` from a JSON file (`-`: standard input)."""
    text, source = read_input_file(name, "--ingest-replay", stdin)
    record = parse_json_object(text, source, "a RunRecord {run_id, rounds?, ...}")
    if not isinstance(record.get("run_id", record.get("runId")), str):
        raise UsageError(f"{source} has no run_id: a RunRecord names its run")
    return record
