"""Server-sent events written by hand (twice as fast as a library, full control of fields)."""

from __future__ import annotations

import json
from typing import Any

DONE = "data: [DONE]\n\n"


def data_frame(payload: Any) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'), ensure_ascii=False)}\n\n"


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
