"""An event's stream frame is encoded once per way of showing it, whoever follows it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sogni_intelligence.api.sse import encoded_frame
from sogni_intelligence.store.events import Event


def test_a_frame_is_built_once_per_variant_and_reused() -> None:
    event = Event("wf_1", 4, "step_started", datetime(2026, 1, 1, tzinfo=UTC), {"stepId": "a"})
    built: list[str] = []

    def body(status: str) -> dict[str, str]:
        built.append(status)
        return {"status": status, "type": event.type}

    first = encoded_frame(event, ("workflow", "running"), lambda: body("running"))
    again = encoded_frame(event, ("workflow", "running"), lambda: body("running"))
    other = encoded_frame(event, ("workflow", "queued"), lambda: body("queued"))
    assert first is again
    assert built == ["running", "queued"]
    head, kind, data, *_ = first.decode().split("\n")
    assert (head, kind) == ("id: 4", "event: step_started")
    assert json.loads(data.removeprefix("data: ")) == {"status": "running", "type": "step_started"}
    assert json.loads(other.decode().split("\n")[2].removeprefix("data: "))["status"] == "queued"
