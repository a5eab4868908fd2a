"""Where a fork of a chat run starts: the history settled by an event, and its media."""

from datetime import UTC, datetime
from typing import Any

import pytest

from sogni_intelligence.errors import ServiceError
from sogni_intelligence.runtime.chat_run_forks import diverged, fork_point
from sogni_intelligence.store.events import Event
from sogni_intelligence.store.records import Record

NOW = datetime(2026, 12, 4, tzinfo=UTC)
REQUEST = [{"role": "user", "content": "a fox, then a poem"}]
CALL = {"id": "c1", "type": "function", "function": {"name": "generate_image", "arguments": "{}"}}
STATE = [
    {"role": "system", "content": "uploads: image -1 = your photo"},
    *REQUEST,
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "c1", "content": '{"ok": true}'},
    {"role": "assistant", "content": "Here is your fox."},
]
MEDIA = {"uploads": {"image": ["up1"]}, "generated": {"image": ["gen1", "gen2"]}}


def _event(sequence: int, type: str, **payload: Any) -> Event:
    return Event("run_1", sequence, type, NOW, payload)


EVENTS = [
    _event(0, "run_created"),
    _event(1, "run_started"),
    _event(2, "media_context_updated"),
    _event(3, "assistant_message_completed", round=0, content="", toolCalls=["generate_image"]),
    _event(4, "tool_call_dispatched", toolCallId="c1", toolName="generate_image"),
    _event(5, "tool_call_resolved", toolCallId="c1", artifacts=[{"id": "gen1"}, {"id": "gen2"}]),
    _event(6, "assistant_message_completed", round=1, content="Here is your fox.", toolCalls=[]),
    _event(7, "run_completed"),
]


def _run(status: str = "completed") -> Record:
    data = {
        "engine": {"request": {"messages": REQUEST}},
        "mediaInputs": [{"url": "https://example.com/photo.png"}],
        "state": {"messages": STATE, "media": MEDIA},
    }
    return Record("run_1", "chat_run", "key_a", status, data, NOW, NOW)


def test_before_the_batch_is_settled_the_history_is_the_request() -> None:
    for after in (0, 3, 4):
        point = fork_point(_run(), EVENTS, after)
        assert point.messages == STATE[:2] and point.kept_rounds == 0
        assert point.media == {"uploads": {"image": ["up1"]}, "generated": {"image": []}}
        assert [r["content"] for r in point.later_rounds] == ["", "Here is your fox."]
        assert not point.ends_with_answer


def test_after_the_batch_the_call_and_its_results_and_media_are_kept() -> None:
    point = fork_point(_run(), EVENTS, 5)
    assert point.messages == STATE[:4] and point.kept_rounds == 1
    assert point.media == MEDIA
    assert point.later_rounds == [{"content": "Here is your fox.", "toolCalls": []}]


def test_after_the_answer_everything_is_kept() -> None:
    point = fork_point(_run(), EVENTS, 7)
    assert point.messages == STATE and point.ends_with_answer and point.later_rounds == []


def test_a_running_run_or_a_point_past_its_end_is_refused() -> None:
    with pytest.raises(ServiceError) as running:
        fork_point(_run("running"), EVENTS, 2)
    assert running.value.status == 409
    with pytest.raises(ServiceError) as beyond:
        fork_point(_run(), EVENTS, 8)
    assert beyond.value.status == 400


def test_divergence_names_what_differs() -> None:
    expected = [{"content": "hi", "toolCalls": []}]
    assert diverged(expected, 0, "hi", []) is None
    assert diverged(expected, 0, "hello", [])["expected"] == expected[0]  # type: ignore[index]
    assert "no such round" in diverged(expected, 1, "x", [])["reason"]  # type: ignore[index]
