import json

import pytest

from sogni_intelligence.llm.grammar import (
    CALL_LIST_CAP,
    CALL_STRING_CAP,
    calls_grammar,
    check_schema,
    json_grammar,
    strict_schema,
    text_or_calls_grammar,
    tool_call_schema,
)
from sogni_intelligence.llm.protocol import EngineError


def test_strict_schema_closes_objects_that_name_their_properties() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "object", "properties": {"b": {"type": "string"}}},
            "c": {"type": "array", "items": {"type": "object", "properties": {}}},
            "d": {"anyOf": [{"type": "object", "properties": {"e": {"type": "integer"}}}]},
            "free": {"type": "object"},
        },
        "$defs": {"x": {"type": "object", "properties": {"y": {"type": "null"}}}},
    }
    strict = strict_schema(schema)
    assert strict["additionalProperties"] is False
    assert strict["properties"]["a"]["additionalProperties"] is False
    assert strict["properties"]["c"]["items"]["additionalProperties"] is False
    assert strict["properties"]["d"]["anyOf"][0]["additionalProperties"] is False
    assert strict["$defs"]["x"]["additionalProperties"] is False
    # an object without declared properties stays open: json_object mode relies on it
    assert "additionalProperties" not in strict["properties"]["free"]
    # the caller's schema is left alone
    assert "additionalProperties" not in schema


def test_explicit_additional_properties_is_kept() -> None:
    schema = {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}}
    assert strict_schema(schema)["additionalProperties"] == {"type": "string"}


def test_json_grammar_is_llguidance_with_compact_whitespace() -> None:
    grammar = json_grammar({"type": "object", "properties": {"a": {"type": "string"}}})
    header, body = grammar.split("\nstart: %json ", 1)
    assert header == "%llguidance {}"
    schema = json.loads(body)
    assert schema["x-guidance"] == {"whitespace_flexible": False}
    assert schema["additionalProperties"] is False


def test_tool_call_schema_lists_each_function_once() -> None:
    tools = [
        {"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "b"}},
    ]
    schema = tool_call_schema(tools, max_calls=1)
    assert schema["maxItems"] == 1 and schema["minItems"] == 1
    names = [v["properties"]["name"]["const"] for v in schema["items"]["anyOf"]]
    assert names == ["a", "b"]
    assert schema["items"]["anyOf"][1]["properties"]["arguments"]["type"] == "object"


@pytest.mark.parametrize("bad", [{"type": "nope"}, {"properties": 3}, [1, 2], "string"])
def test_check_schema_rejects_invalid_schemas(bad: object) -> None:
    with pytest.raises(EngineError) as info:
        check_schema(bad, "response_format.json_schema.schema")
    assert info.value.status == 400
    assert info.value.param == "response_format.json_schema.schema"


def test_check_schema_accepts_valid_schema() -> None:
    check_schema({"type": "object", "properties": {"a": {"type": "integer"}}}, "p")


def test_tool_definitions_stay_reachable_in_a_call_schema() -> None:
    """`$defs` of a tool's parameters move to the root with its name, refs rewritten."""
    from jsonschema import Draft202012Validator

    parameters = {
        "type": "object",
        "properties": {"frames": {"type": "array", "items": {"$ref": "#/$defs/Frame"}}},
        "$defs": {"Frame": {"type": "object", "properties": {"at": {"type": "number"}}}},
    }
    tools = [
        {"type": "function", "function": {"name": "clip", "parameters": parameters}},
        {"type": "function", "function": {"name": "other", "parameters": parameters}},
    ]
    schema = tool_call_schema(tools, 2)
    assert set(schema["$defs"]) == {"clip__Frame", "other__Frame"}
    validator = Draft202012Validator(schema)
    good = [{"name": "clip", "arguments": {"frames": [{"at": 1.5}]}}]
    bad = [{"name": "clip", "arguments": {"frames": [{"at": "late"}]}}]
    assert validator.is_valid(good) and not validator.is_valid(bad)
    assert "$defs" not in parameters["properties"]["frames"]["items"]  # input untouched
    assert parameters["properties"]["frames"]["items"] == {"$ref": "#/$defs/Frame"}


def test_call_grammars_cap_free_strings_and_lists() -> None:
    """A small model looping inside an argument must close it: strings and lists get the call
    caps unless the tool's own caps are tighter; enumerated strings are left alone."""
    parameters = {
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "maxLength": 32000},
            "title": {"type": "string", "maxLength": 40},
            "free": {"type": "string"},
            "mode": {"type": "string", "enum": ["a", "b"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "few": {"anyOf": [{"type": "array", "maxItems": 2}, {"type": "null"}]},
        },
    }
    tool = {"type": "function", "function": {"name": "t", "parameters": parameters}}
    arguments = tool_call_schema([tool], 1)["items"]["properties"]["arguments"]["properties"]
    assert arguments["prompt"]["maxLength"] == CALL_STRING_CAP
    assert arguments["title"]["maxLength"] == 40
    assert arguments["free"]["maxLength"] == CALL_STRING_CAP
    assert "maxLength" not in arguments["mode"]
    assert arguments["tags"]["maxItems"] == CALL_LIST_CAP
    assert arguments["tags"]["items"]["maxLength"] == CALL_STRING_CAP
    assert arguments["few"]["anyOf"][0]["maxItems"] == 2
    assert parameters["properties"]["prompt"]["maxLength"] == 32000  # the tool's own is intact


def test_combinators_follow_an_objects_own_properties() -> None:
    """llguidance orders properties as it reads them: the tool's own come first."""
    schema = {"allOf": [{"anyOf": []}], "properties": {"a": {}}, "type": "object"}
    assert list(strict_schema(schema)) == ["properties", "type", "additionalProperties", "allOf"]


def _rules(grammar: str) -> dict[str, str]:
    lines = grammar.splitlines()
    assert lines[0] == "%llguidance {}"
    return dict(line.split(": ", 1) for line in lines[1:])


def test_a_free_reply_may_end_in_calls_that_follow_the_schema() -> None:
    tools = [
        {"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "b"}},
    ]
    grammar = text_or_calls_grammar(tools, 3, "<c>", "</c>", "<c>|FENCE", "JSON", "<|end|>")
    rules = _rules(grammar)
    # The reply may end on the model's end-of-turn token: llama.cpp stops only there.
    assert rules["start"] == "(TEXT | call{1,3}) <|end|>?"
    assert rules["call"] == 'head arguments "</c>"'
    assert rules["head[lazy]"] == 'TEXT "<c>"'
    # Free text is anything without a call in it: once the opener is written, only a call.
    assert rules["TEXT"] == "/(?s:.*)/ & ~/(?s:.*)(<c>|FENCE)(?s:.*)/ & ~/(JSON)(?s:.*)/"
    call = json.loads(rules["arguments"].removeprefix("%json "))
    assert [v["properties"]["name"]["const"] for v in call["anyOf"]] == ["a", "b"]
    assert call["x-guidance"] == {"whitespace_flexible": False}


def test_a_call_pattern_that_would_end_a_grammar_regex_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot hold"):
        text_or_calls_grammar([], 1, "<c>", "</c>", "a/b", "x", "<|end|>")


@pytest.mark.parametrize("token", ["</s> ", "end", "<a b>", ""])
def test_an_end_of_turn_a_grammar_cannot_name_is_refused(token: str) -> None:
    with pytest.raises(ValueError, match="not a special token"):
        text_or_calls_grammar([], 1, "<c>", "</c>", "x", "y", token)


def test_a_grammar_is_made_once_per_distinct_tool_set() -> None:
    """Requests of one session repeat their tools; the grammar of a set already seen is the
    same text, and a changed schema gives a new one."""
    tool = {
        "type": "function",
        "function": {
            "name": "pick",
            "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}},
        },
    }
    first = calls_grammar([tool], 1)
    assert calls_grammar([json.loads(json.dumps(tool))], 1) is first
    narrower = json.loads(json.dumps(tool))
    narrower["function"]["parameters"]["properties"]["n"]["maximum"] = 3
    assert calls_grammar([narrower], 1) != first
    assert calls_grammar([tool], 2) != first
