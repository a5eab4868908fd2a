"""Reading PostgreSQL's notices of appended events (the trigger's payloads)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sogni_intelligence.store.notify import parse


def test_a_notice_with_the_whole_event_gives_the_event() -> None:
    body = {
        "record_id": "wf_1",
        "sequence": 7,
        "type": "step_completed",
        "at": "2026-12-04T13:20:01.123456+00:00",
        "payload": {"stepId": "s1"},
    }
    record_id, sequence, event = parse(json.dumps(body))  # type: ignore[misc]
    assert (record_id, sequence) == ("wf_1", 7)
    assert event is not None and event.type == "step_completed"
    assert event.payload == {"stepId": "s1"}
    assert event.at == datetime(2026, 12, 4, 13, 20, 1, 123456, tzinfo=UTC)


def test_a_notice_of_a_large_event_names_it_only() -> None:
    assert parse(json.dumps({"record_id": "run_2", "sequence": 3})) == ("run_2", 3, None)


def test_the_earlier_plain_form_is_still_read() -> None:
    assert parse("wf_a b 12") == ("wf_a b", 12, None)


def test_payloads_this_version_cannot_read_are_ignored() -> None:
    for payload in ("", "wf_1", "wf_1 x", "{", '{"record_id": "a"}', '{"sequence": 1}'):
        assert parse(payload) is None
