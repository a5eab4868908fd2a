import json
from collections.abc import AsyncIterator
from typing import Any

from sogni_intelligence.llm import structured

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
    return {"id": "x", "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}]}


async def _feed(texts: list[str], finish: str = "stop") -> AsyncIterator[dict[str, Any]]:
    yield _chunk({"role": "assistant", "content": None})
    for text in texts:
        yield _chunk({"content": text})
    yield _chunk(finish=finish)
    yield {"id": "x", "choices": [], "usage": {"completion_tokens": len(texts)}}


async def _collect(plan: structured.Plan, texts: list[str], finish: str = "stop") -> list[dict]:
    return [chunk async for chunk in structured.apply(plan, _feed(texts, finish))]


def _calls(chunks: list[dict]) -> list[tuple[str, str]]:
    calls: dict[int, list[str]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for call in choice["delta"].get("tool_calls", []):
                entry = calls.setdefault(call["index"], ["", ""])
                entry[0] += call.get("function", {}).get("name", "")
                entry[1] += call.get("function", {}).get("arguments", "")
    return [(name, args) for name, args in (calls[i] for i in sorted(calls))]


def _finish(chunks: list[dict]) -> str | None:
    return [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1]


def test_plan_without_tools_is_plain_and_untouched() -> None:
    request = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    plan = structured.plan(request, native_tools=False)
    assert plan.mode == "plain"
    assert plan.request == request


def test_named_choice_forces_a_grammar_over_that_function_only() -> None:
    request = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [WEATHER, TIME],
        "tool_choice": {"type": "function", "function": {"name": "get_time"}},
    }
    plan = structured.plan(request, native_tools=True)
    assert plan.mode == "forced"
    assert plan.tool_names == {"get_time"}
    assert "tools" not in plan.request and "tool_choice" not in plan.request
    assert '"const":"get_time"' in plan.request["grammar"]
    assert "get_weather" not in plan.request["grammar"]
    assert plan.request["messages"][0]["role"] == "system"


def test_required_allows_several_calls_only_when_parallel_is_asked() -> None:
    base = {"messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER]}
    single = structured.plan({**base, "tool_choice": "required"}, native_tools=False)
    several = structured.plan(
        {**base, "tool_choice": "required", "parallel_tool_calls": True}, native_tools=False
    )
    assert '"maxItems":1' in single.request["grammar"]
    assert f'"maxItems":{structured.MAX_PARALLEL_CALLS}' in several.request["grammar"]


def test_auto_without_native_template_lets_a_model_answer_or_call_validly() -> None:
    base = {"messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER, TIME]}
    plan = structured.plan(base, native_tools=False, end_of_turn="<|im_end|>")
    assert plan.mode == "sniff" and plan.tool_names == {"get_weather", "get_time"}
    grammar = plan.request["grammar"]
    assert "start: (TEXT | call{1,1}) <|im_end|>?" in grammar
    assert f"head[lazy]: TEXT {json.dumps(structured.CALL_OPEN)}" in grammar
    assert '"const":"get_weather"' in grammar and '"const":"get_time"' in grammar
    several = structured.plan(
        {**base, "parallel_tool_calls": True}, native_tools=False, end_of_turn="<|im_end|>"
    )
    assert f"call{{1,{structured.MAX_PARALLEL_CALLS}}}" in several.request["grammar"]
    # An end token a grammar cannot name: the reply is still read for calls, unconstrained.
    for end in (None, "</s> "):
        loose = structured.plan(base, native_tools=False, end_of_turn=end)
        assert loose.mode == "sniff" and "grammar" not in loose.request


def test_auto_with_native_template_passes_tools_through() -> None:
    request = {"messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER]}
    plan = structured.plan(request, native_tools=True)
    assert plan.mode == "plain"
    assert plan.request["tools"] == [WEATHER] and plan.request["tool_choice"] == "auto"


def test_tool_choice_none_drops_the_tools() -> None:
    request = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [WEATHER],
        "tool_choice": "none",
    }
    plan = structured.plan(request, native_tools=True)
    assert plan.mode == "plain" and "tools" not in plan.request


def test_history_with_tool_turns_is_flattened_for_plain_templates() -> None:
    request = {
        "messages": [
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "rain"},
        ]
    }
    plan = structured.plan(request, native_tools=False)
    roles = [m["role"] for m in plan.request["messages"]]
    assert roles == ["user", "assistant", "user"]
    assert structured.CALL_OPEN in plan.request["messages"][1]["content"]
    assert "rain" in plan.request["messages"][2]["content"]


async def test_forced_output_becomes_tool_call_deltas() -> None:
    plan = structured.plan(
        {
            "messages": [{"role": "user", "content": "x"}],
            "tools": [WEATHER],
            "tool_choice": "required",
        },
        native_tools=False,
    )
    text = json.dumps([{"name": "get_weather", "arguments": {"city": "Zürich, a long city name"}}])
    chunks = await _collect(plan, [text[:10], text[10:]])
    assert _calls(chunks) == [("get_weather", '{"city":"Zürich, a long city name"}')]
    assert _finish(chunks) == "tool_calls"
    first_call = next(
        c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("tool_calls")
    )
    head = first_call["choices"][0]["delta"]["tool_calls"][0]
    assert head["id"].startswith("call_") and head["function"]["name"] == "get_weather"
    assert head["function"]["arguments"] == ""
    # several argument fragments follow, and no content leaks
    assert sum(1 for c in chunks if c["choices"] and "tool_calls" in c["choices"][0]["delta"]) > 2
    assert not any(c["choices"] and c["choices"][0]["delta"].get("content") for c in chunks)
    assert chunks[-1]["choices"] == []  # usage chunk still passes


async def test_truncated_forced_output_is_returned_as_text_with_length() -> None:
    plan = structured.plan(
        {
            "messages": [{"role": "user", "content": "x"}],
            "tools": [WEATHER],
            "tool_choice": "required",
        },
        native_tools=False,
    )
    chunks = await _collect(plan, ['[{"name":"get_wea'], finish="length")
    assert _calls(chunks) == []
    assert _finish(chunks) == "length"
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        == '[{"name":"get_wea'
    )


async def test_sniffed_auto_call_is_parsed_and_text_before_it_is_streamed() -> None:
    plan = structured.plan(
        {"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER]}, native_tools=False
    )
    assert plan.mode == "sniff"
    pieces = [
        "Let me check. <tool",
        '_call>{"name": "get_weather", ',
        '"arguments": {"city": "Rome"}}</tool_call>',
    ]
    chunks = await _collect(plan, pieces)
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert content == "Let me check. "
    assert _calls(chunks) == [("get_weather", '{"city":"Rome"}')]
    assert _finish(chunks) == "tool_calls"


async def test_sniffed_text_without_a_valid_call_is_returned_whole() -> None:
    plan = structured.plan(
        {"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER]}, native_tools=False
    )
    pieces = ["a < b and ", '<tool_call>{"name": "unknown", "arguments": {}}</tool_call>']
    chunks = await _collect(plan, pieces)
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert content == "".join(pieces)
    assert _finish(chunks) == "stop"
