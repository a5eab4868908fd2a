"""Grammars that make any GGUF model emit valid JSON: llguidance `%json` with compact
whitespace, and `additionalProperties: false` wherever an object lists its properties (without
it, tiny models invent extra keys)."""

from __future__ import annotations

import copy
import functools
import json
import re
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from jsonschema import SchemaError
from jsonschema.validators import validator_for

from sogni_intelligence.llm.protocol import EngineError

#: How a grammar names a special token of the model's vocabulary.
SPECIAL_TOKEN = re.compile(r"<[^<>\s]+>")
#: How many distinct grammars are kept for reuse.
GRAMMARS_KEPT = 128
#: The schema keyword by which a tool marks a property call grammars leave out.
GRAMMAR_SKIP = "x-grammar-skip"
#: The longest string and list a call grammar lets a model write: a small model that starts
#: repeating itself inside an argument must close it instead of filling the round's tokens.
CALL_STRING_CAP = 1000
CALL_LIST_CAP = 16
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_SUBSCHEMA_SINGLE = ("items", "additionalItems", "not", "if", "then", "else", "contains")


def check_schema(schema: Any, param: str) -> None:
    """Reject a schema that is not a valid JSON Schema, naming the request field."""
    if not isinstance(schema, dict):
        raise EngineError("schema must be a JSON object", 400, "invalid_request_error", None, param)
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise EngineError(
            f"invalid JSON schema: {exc.message}", 400, "invalid_request_error", None, param
        ) from exc


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of `schema` that closes every object which names its properties, and puts those
    properties before any combinator: llguidance fixes the order of properties as it reads a
    schema, and pydantic sorts `allOf` before `properties`."""
    result = copy.deepcopy(schema)
    _close_objects(result)
    return result


def _close_objects(node: Any) -> None:
    if not isinstance(node, dict):
        return
    if "properties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False
    if "properties" in node:
        for key in ("allOf", "anyOf", "oneOf", "$ref"):
            if key in node:
                node[key] = node.pop(key)
    for key in _SUBSCHEMA_LISTS:
        for child in node.get(key) or []:
            _close_objects(child)
    for key in _SUBSCHEMA_MAPS:
        for child in (node.get(key) or {}).values():
            _close_objects(child)
    for key in _SUBSCHEMA_SINGLE:
        _close_objects(node.get(key))


def _memoized(make: Callable[..., str]) -> Callable[..., str]:
    """Keep the grammars a maker made, by its arguments written out as JSON. The tools of a
    session's requests repeat, and making their grammar (copies of every tool's schema,
    tightened) costs milliseconds of the event loop, several times the price of the key."""
    made: OrderedDict[str, str] = OrderedDict()

    @functools.wraps(make)
    def maker(*args: Any) -> str:
        key = json.dumps(args, sort_keys=True, separators=(",", ":"))
        grammar = made.get(key)
        if grammar is None:
            grammar = made[key] = make(*args)
            if len(made) > GRAMMARS_KEPT:
                made.popitem(last=False)
        else:
            made.move_to_end(key)
        return grammar

    return maker


@_memoized
def json_grammar(schema: dict[str, Any]) -> str:
    """An llguidance grammar whose only sentences are compact JSON documents of `schema`."""
    return "%llguidance {}\nstart: %json " + _compact_json(schema)


@_memoized
def calls_grammar(tools: list[dict[str, Any]], max_calls: int) -> str:
    """An llguidance grammar for a JSON array of 1..max_calls calls of `tools`."""
    return json_grammar(tool_call_schema(tools, max_calls))


@_memoized
def text_or_calls_grammar(
    tools: list[dict[str, Any]],
    max_calls: int,
    opener: str,
    closer: str,
    call_anywhere: str,
    call_first: str,
    end_of_turn: str,
) -> str:
    """An llguidance grammar for a free reply that may end in 1..max_calls calls written
    `opener{"name": ..., "arguments": {...}}closer`.

    Until the model writes `opener` it writes what it likes, except what a reader of written
    calls would take for one (`call_anywhere` matched anywhere, `call_first` at the start;
    regexes without `/`); from `opener` on, only a valid call of `tools` can follow. A model
    can then answer in words or call, but cannot write a call that is malformed.

    `end_of_turn` is the model's end-of-turn special token (`<|im_end|>`): llama.cpp stops a
    grammar's generation only when the grammar is complete, so free text must be able to
    end with it, or every answer would run to max_tokens."""
    for pattern in (call_anywhere, call_first):
        if "/" in pattern:
            raise ValueError(f"a grammar regex cannot hold '/': {pattern}")
    if not SPECIAL_TOKEN.fullmatch(end_of_turn):
        raise ValueError(f"not a special token: {end_of_turn!r}")
    call = _compact_json(one_call_schema(tools))
    return "\n".join(
        [
            "%llguidance {}",
            f"start: (TEXT | call{{1,{max_calls}}}) {end_of_turn}?",
            f"call: head arguments {json.dumps(closer)}",
            f"head[lazy]: TEXT {json.dumps(opener)}",
            f"arguments: %json {call}",
            f"TEXT: /(?s:.*)/ & ~/(?s:.*)({call_anywhere})(?s:.*)/ & ~/({call_first})(?s:.*)/",
        ]
    )


def _compact_json(schema: dict[str, Any]) -> str:
    guided = {**strict_schema(schema), "x-guidance": {"whitespace_flexible": False}}
    return json.dumps(guided, separators=(",", ":"))


def tool_call_schema(tools: list[dict[str, Any]], max_calls: int) -> dict[str, Any]:
    """Schema of a JSON array of 1..max_calls calls `{"name": ..., "arguments": {...}}`."""
    call = one_call_schema(tools)
    definitions = call.pop("$defs", None)
    schema = {"type": "array", "items": call, "minItems": 1, "maxItems": max_calls}
    if definitions:
        schema["$defs"] = definitions
    return schema


def one_call_schema(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """Schema of one call `{"name": ..., "arguments": {...}}` of any of `tools`.

    Each tool's own definitions (`$defs`) move to the root under the tool's name, and its
    `$ref`s with them: nested under `arguments` they would no longer resolve."""
    variants = []
    definitions: dict[str, Any] = {}
    for tool in tools:
        function = tool["function"]
        parameters = copy.deepcopy(
            function.get("parameters") or {"type": "object", "properties": {}}
        )
        _drop_skipped(parameters)
        _cap_lengths(parameters)
        prefix = f"{function['name']}__"
        for key in ("$defs", "definitions"):
            for name, schema in (parameters.pop(key, None) or {}).items():
                definitions[prefix + name] = schema
        _rebase_refs(parameters, prefix)
        variants.append(
            {
                "type": "object",
                "properties": {"name": {"const": function["name"]}, "arguments": parameters},
                "required": ["name", "arguments"],
            }
        )
    for name, schema in definitions.items():
        _rebase_refs(schema, name.split("__", 1)[0] + "__")
    call = variants[0] if len(variants) == 1 else {"anyOf": variants}
    if definitions:
        call["$defs"] = definitions
    return call


def _drop_skipped(parameters: dict[str, Any]) -> None:
    """Leave out the top-level properties a tool marks as not for models to write unasked
    (`x-grammar-skip`); the tool still accepts them from clients."""
    properties = parameters.get("properties") or {}
    for name in [n for n, schema in properties.items() if schema.get(GRAMMAR_SKIP)]:
        del properties[name]
        if name in parameters.get("required", []):
            parameters["required"].remove(name)


def _cap_lengths(node: Any) -> None:
    """Cap free strings and lists at the call caps (a tighter cap of the tool's own stays)."""
    if isinstance(node, dict):
        kinds = node.get("type")
        if kinds == "string" and "enum" not in node and "const" not in node:
            node["maxLength"] = min(node.get("maxLength", CALL_STRING_CAP), CALL_STRING_CAP)
        elif kinds == "array":
            node["maxItems"] = min(node.get("maxItems", CALL_LIST_CAP), CALL_LIST_CAP)
        for value in node.values():
            _cap_lengths(value)
    elif isinstance(node, list):
        for value in node:
            _cap_lengths(value)


def _rebase_refs(node: Any, prefix: str) -> None:
    """Point local `#/$defs/X` (or `#/definitions/X`) references at `#/$defs/<prefix>X`."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            for local in ("#/$defs/", "#/definitions/"):
                if ref.startswith(local):
                    node["$ref"] = "#/$defs/" + prefix + ref[len(local) :]
        for value in node.values():
            _rebase_refs(value, prefix)
    elif isinstance(node, list):
        for value in node:
            _rebase_refs(value, prefix)
