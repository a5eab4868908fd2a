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


class UsageError(Exception):
    """A mistake in the command line or the configuration (exit status 2)."""


class Connection(BaseModel):
    base_url: str
    api_key: str


def connection(
    api_base_url: str | None,
    api_key: str | None,
    env: Mapping[str, str],
    *,
    require_key: bool = True,
) -> Connection:
    """Base URL from the flag, `SOGNI_API_BASE_URL`, `SOGNI_REST_ENDPOINT` or the local
    default; key from the flag or `SOGNI_API_KEY` (may be empty only without `require_key`,
    for `--doctor`, which reports a missing key itself)."""
    base = (
        api_base_url
        or env.get("SOGNI_API_BASE_URL")
        or env.get("SOGNI_REST_ENDPOINT")
        or DEFAULT_BASE_URL
    ).strip()
    parts = urlsplit(base)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise UsageError(f"the API base URL must be an http(s) URL, got {base!r}")
    key = (api_key or env.get("SOGNI_API_KEY") or "").strip()
    if not key and require_key:
        raise UsageError("no API key: pass --api-key or set SOGNI_API_KEY")
    return Connection(base_url=base.rstrip("/"), api_key=key)


def load_workflow_input(value: str, stdin: TextIO = sys.stdin) -> dict[str, Any]:
    """`--workflow-input`: the workflow `input` object `{title?, steps}` as JSON text, as
    `@path` to a JSON file, or as `@-` to read it from standard input."""
    if value.startswith("@"):
        name = value[1:]
        if not name:
            raise UsageError("--workflow-input @ needs a file name (or @- for stdin)")
        if name == "-":
            text, source = stdin.read(), "the workflow input on stdin"
        else:
            try:
                text = Path(name).expanduser().read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"cannot read --workflow-input file {name}: {exc}") from exc
            source = name
    else:
        text, source = value, "--workflow-input"
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source} is not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise UsageError(f"{source} must be a JSON object: the workflow input {{title?, steps}}")
    return parsed
