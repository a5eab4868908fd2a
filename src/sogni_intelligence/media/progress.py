"""The progress callback a media job reports through: a fraction in [0, 1] and an optional
message. Tools pass theirs (`ToolContext.progress`) to the backends they call."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, str | None], None]
