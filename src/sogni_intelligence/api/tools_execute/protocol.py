"""The request body of `POST /v1/creative-agent/tools/execute` (snake_case or camelCase)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sogni_intelligence.api.wire import WireModel


class ExecuteToolBody(WireModel):
    tool: str = Field(min_length=1, max_length=128)
    # The SDK drops null values, so a missing `arguments` and `null` both mean "none".
    arguments: dict[str, Any] | None = None
    app_source: str | None = Field(None, max_length=128)
    token_type: Literal["spark", "sogni", "auto"] | None = None
    safe_content_filter: bool | None = None
