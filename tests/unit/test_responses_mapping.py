"""The Responses API's two translations: input items into chat messages, and a turn's
chat-run events into Responses events and the response object."""

from __future__ import annotations

from typing import Any

import pytest

from sogni_intelligence.api.responses.events import ResponseFolder, fold
from sogni_intelligence.api.responses.items import as_items, chat_messages, conversation_items
from sogni_intelligence.errors import ServiceError

BASE = {"id": "resp_abc", "object": "response", "model": "m"}
CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}


def test_a_string_is_one_user_message() -> None:
    assert chat_messages(as_items("hi")) == [{"role": "user", "content": "hi"}]


def test_items_become_chat_messages() -> None:
    items: list[dict[str, Any]] = [
        {"role": "developer", "content": "be brief"},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": "https://example.com/a.png"},
            ],
        },
        {
            "type": "message",
            "role": "assistant",
            "id": "msg_1",
            "status": "completed",
            "content": [{"type": "output_text", "text": "calling", "annotations": []}],
        },
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "g", "arguments": '{"x":1}'},
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"text": "two"}]},
        {
            "type": "sogni_tool_call",
            "call_id": "c3",
            "name": "generate_image",
            "arguments": "{}",
            "result": {"status": "ok"},
        },
    ]
    messages = chat_messages(items)
    assert messages[0] == {"role": "developer", "content": "be brief"}
    assert messages[1]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
    ]
    assistant = messages[2]
    assert assistant["content"] == [{"type": "text", "text": "calling"}]
    assert [c["id"] for c in assistant["tool_calls"]] == ["c1", "c2"]
    assert messages[3] == {"role": "tool", "tool_call_id": "c1", "content": "one"}
    assert messages[4] == {"role": "tool", "tool_call_id": "c2", "content": "two"}
    assert messages[5]["tool_calls"][0]["function"]["name"] == "generate_image"
    assert messages[6] == {"role": "tool", "tool_call_id": "c3", "content": '{"status": "ok"}'}


@pytest.mark.parametrize(
    ("item", "param"),
    [
        ({"type": "reasoning", "summary": []}, "input[1].type"),
        ({"role": "robot", "content": "x"}, "input[1].role"),
        ({"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}, "input[1]"),
        ({"type": "function_call_output", "output": "x"}, "input[1].call_id"),
        ({"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}, "input[1]"),
    ],
)
def test_unusable_items_are_named(item: dict[str, Any], param: str) -> None:
    with pytest.raises(ServiceError) as caught:
        chat_messages([{"role": "user", "content": "ok"}, item])
    assert caught.value.status == 400 and (caught.value.param or "").startswith(param)


def test_items_of_a_previous_conversation_are_not_counted_as_input() -> None:
    with pytest.raises(ServiceError) as caught:
        chat_messages([{"role": "robot", "content": "x"}, {"role": "user", "content": "y"}], 1)
    assert caught.value.param == "previous_response_id (item 0).role"


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def test_a_streamed_answer() -> None:
    folder, events = fold(
        BASE,
        False,
        [
            ("run_created", {}),
            ("run_started", {}),
            ("llm_round_started", {"round": 0}),
            ("assistant_message_delta", {"round": 0, "delta": "Hel"}),
            ("assistant_message_delta", {"round": 0, "delta": "lo"}),
            ("assistant_message_completed", {"round": 0, "content": "Hello"}),
            ("run_completed", {"content": "Hello", "finishReason": "stop", "usage": _usage()}),
        ],
    )
    assert _types(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(10))
    assert events[0]["response"]["status"] == "in_progress"
    assert events[4]["item_id"] == "msg_abc_0" and events[6]["text"] == "Hello"
    response = folder.response()
    assert response == events[-1]["response"]
    assert response["output"][0]["content"] == [
        {"type": "output_text", "text": "Hello", "annotations": []}
    ]
    assert response["usage"]["input_tokens"] == 5 and response["usage"]["total_tokens"] == 8


def _usage() -> dict[str, int]:
    return {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


def test_client_function_calls_and_a_cut_answer() -> None:
    folder, events = fold(
        BASE,
        False,
        [
            ("run_created", {}),
            ("run_started", {}),
            ("run_completed", {"content": "", "finishReason": "tool_calls", "toolCalls": [CALL]}),
        ],
    )
    assert _types(events)[2:] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    item = folder.response()["output"][0]
    assert item == {
        "type": "function_call",
        "id": "fc_abc_0",
        "call_id": "call_1",
        "name": "f",
        "arguments": '{"a":1}',
        "status": "completed",
    }
    cut, events = fold(
        BASE,
        False,
        [
            ("assistant_message_delta", {"delta": "a"}),
            ("run_completed", {"content": "a", "finishReason": "length"}),
        ],
    )
    assert events[-1]["type"] == "response.incomplete"
    assert cut.response()["incomplete_details"] == {"reason": "max_output_tokens"}


def test_hosted_calls_and_an_answer_given_by_a_control_tool() -> None:
    folder, events = fold(
        BASE,
        True,
        [
            ("run_created", {}),
            ("run_started", {}),
            ("assistant_message_delta", {"delta": "Drawing."}),
            ("assistant_message_completed", {"content": "Drawing."}),
            ("tool_call_dispatched", {"toolCallId": "t1", "toolName": "generate_image"}),
            ("tool_call_progress", {"toolCallId": "t1"}),
            (
                "tool_call_resolved",
                {"toolCallId": "t1", "status": "ok", "artifacts": [{"id": "a1"}], "summary": "1"},
            ),
            ("llm_round_started", {"round": 1}),
            ("run_waiting_for_user", {"reason": "ask_clarifying_question", "message": "Red?"}),
        ],
    )
    assert events[0]["response"]["status"] == "queued"
    output = folder.response()["output"]
    assert [o["type"] for o in output] == ["message", "sogni_tool_call", "message"]
    assert output[0]["content"][0]["text"] == "Drawing."
    assert output[1]["status"] == "completed" and output[1]["result"]["artifacts"] == [{"id": "a1"}]
    assert output[2]["content"][0]["text"] == "Red?"
    assert folder.status == "completed" and events[-1]["type"] == "response.completed"


def test_failures_and_cancels_end_the_response() -> None:
    failed, events = fold(BASE, True, [("run_created", {}), ("run_failed", {"reason": "boom"})])
    assert events[-1]["type"] == "response.failed"
    assert failed.response()["error"] == {"code": "server_error", "message": "boom"}
    broke_off, _ = fold(BASE, True, [("run_partial_failure", {"reason": "half"})])
    assert broke_off.status == "failed"
    answered, _ = fold(
        BASE, True, [("run_partial_failure", {"content": "ok", "finishReason": "stop"})]
    )
    assert answered.status == "completed"
    cancelled, events = fold(BASE, True, [("run_created", {}), ("run_cancelled", {})])
    assert cancelled.status == "cancelled" and events[-1]["type"] == "response.cancelled"
    # Nothing follows the end.
    assert cancelled.feed("assistant_message_delta", {"delta": "late"}) == []


def test_an_error_mid_turn() -> None:
    folder = ResponseFolder(BASE, False)
    folder.feed("run_created", {})
    events = folder.fail("engine_error", "the engine stopped", None)
    assert _types(events) == ["error", "response.failed"]
    assert [e["sequence_number"] for e in events] == [1, 2]


def test_replaying_a_log_gives_the_same_events() -> None:
    log = [
        ("run_created", {}),
        ("run_started", {}),
        ("assistant_message_delta", {"delta": "x"}),
        ("run_completed", {"content": "x", "finishReason": "stop"}),
    ]
    assert fold(BASE, True, log)[1] == fold(BASE, True, log)[1]


def test_conversation_items_keep_messages_and_calls() -> None:
    output = [
        {"type": "message", "role": "assistant", "content": []},
        {"type": "sogni_tool_call", "call_id": "x"},
        {"type": "function_call", "call_id": "y"},
        {"type": "reasoning"},
    ]
    assert [i["type"] for i in conversation_items(output)] == [
        "message",
        "sogni_tool_call",
        "function_call",
    ]
