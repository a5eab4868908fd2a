"""Our tool schemas against the hosted tools' manifest that ships in the installed `sogni-client`.

The manifest is the contract clients and LLM prompts are written against: every property it
lists must be accepted by our argument model under the same name and nesting, with its enum
values and a compatible type, and we may not require anything it leaves optional. Each check is
parametrized per tool, so a failure names the tool (and the path inside its schema).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest
from pydantic import ValidationError

from sogni_intelligence.tools.catalog import CATALOG

Schema = dict[str, Any]


def _manifest() -> dict[str, Schema]:
    text = (resources.files("sogni_client") / "data" / "hosted_tools.json").read_text("utf-8")
    return {tool["function"]["name"]: tool["function"] for tool in json.loads(text)["tools"]}


MANIFEST = _manifest()
TOOLS = sorted(MANIFEST)

# A manifest type is satisfied by any of these JSON-schema types in ours: an integer index the
# manifest calls a number, a float where it says integer.
COMPATIBLE = {
    "integer": {"integer", "number"},
    "number": {"number", "integer"},
    "string": {"string"},
    "boolean": {"boolean"},
    "array": {"array"},
    "object": {"object"},
}


def test_manifest_has_the_thirty_hosted_tools() -> None:
    assert len(MANIFEST) == 30


def _alternatives(schema: Schema, root: Schema) -> list[Schema]:
    """The non-null shapes a schema of ours allows, with `$ref`s and `anyOf`/`oneOf` resolved."""
    if "$ref" in schema:
        target = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
        extra = {k: v for k, v in schema.items() if k != "$ref"}
        return _alternatives({**target, **extra}, root)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [alt for option in schema[key] for alt in _alternatives(option, root)]
    if schema.get("type") == "null":
        return []
    return [schema]


def _types(schema: Schema) -> set[str]:
    kind = schema.get("type")
    if kind is None:
        return set()
    return {kind} if isinstance(kind, str) else set(kind) - {"null"}


def _compare(manifest: Schema, ours: Schema, root: Schema, path: str) -> Iterator[str]:
    """Every way `ours` fails to accept what `manifest` describes, as readable problems."""
    options = _alternatives(ours, root)
    if not options:
        yield f"{path}: ours accepts only null"
        return
    kind = manifest.get("type")
    if isinstance(kind, str):
        typed = [o for o in options if not _types(o) or _types(o) & COMPATIBLE.get(kind, {kind})]
        if not typed:
            found = sorted({t for o in options for t in _types(o)})
            yield f"{path}: manifest type {kind}, ours {'/'.join(found)}"
            return
        options = typed
    if "enum" in manifest:
        for value in manifest["enum"]:
            if not any("enum" not in o or value in o["enum"] for o in options):
                yield f"{path}: enum value {value!r} not accepted"
    if kind == "object" or "properties" in manifest:
        objects = [o for o in options if "properties" in o or o.get("type") == "object"]
        if not objects:
            yield f"{path}: manifest object, ours has no properties"
            return
        target = objects[0]
        props = target.get("properties", {})
        for name, sub in manifest.get("properties", {}).items():
            if name not in props:
                yield f"{path}.{name}: missing"
            else:
                yield from _compare(sub, props[name], root, f"{path}.{name}")
        allowed = set(manifest.get("required", []))
        for name in target.get("required", []):
            if name not in allowed:
                yield f"{path}: we require {name}, the manifest does not"
    if kind == "array" and "items" in manifest:
        arrays = [o for o in options if o.get("type") == "array"]
        if arrays and "items" in arrays[0]:
            yield from _compare(manifest["items"], arrays[0]["items"], root, f"{path}[]")


def _problems(name: str) -> list[str]:
    ours = CATALOG[name].parameters()
    return list(_compare(MANIFEST[name]["parameters"], ours, ours, name))


# --- sample arguments built from the manifest -------------------------------------------------


def _number(name: str, schema: Schema) -> float:
    value = schema.get("minimum", 0 if name.endswith(("Index", "index")) else 1)
    if name.startswith("end"):
        value += 1  # an end after its start
    if "maximum" in schema:
        value = min(value, schema["maximum"])
    return value


def _sample(
    schema: Schema, name: str = "", override: tuple[tuple[str, ...], Any] | None = None
) -> Any:
    """An example value for `schema`: required properties only, the first enum value, the
    minimum, a short string, index 0; `override` puts one value at one path (and includes the
    properties on the way there)."""
    path, forced = override if override else ((), None)
    if override and not path:
        return forced
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        names = list(schema.get("required", []))
        if path and path[0] not in names:
            names.append(path[0])
        out = {}
        for prop in names:
            inner = (path[1:], forced) if path and path[0] == prop else None
            out[prop] = _sample(schema["properties"][prop], prop, inner)
        return out
    if kind == "array":
        inner = (path[1:], forced) if path and path[0] == "[]" else None
        count = max(1, schema.get("minItems", 1))
        return [_sample(schema.get("items", {}), name, inner) for _ in range(count)]
    if kind == "integer":
        return int(_number(name, schema))
    if kind == "number":
        return _number(name, schema)
    if kind == "boolean":
        return True
    if kind == "string":  # identifier-shaped: some strings name things (template inputs)
        return "calm_lake_at_dawn"[: schema.get("maxLength", 64)].ljust(
            schema.get("minLength", 0), "x"
        )
    return None


def _enum_paths(
    schema: Schema, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (path, value) of every enum in the manifest schema."""
    for value in schema.get("enum", []):
        yield path, value
    for name, sub in schema.get("properties", {}).items():
        yield from _enum_paths(sub, (*path, name))
    if "items" in schema:
        yield from _enum_paths(schema["items"], (*path, "[]"))


def _validation_error(name: str, arguments: dict[str, Any]) -> str | None:
    try:
        CATALOG[name].args.model_validate(arguments)
    except ValidationError as exc:
        return f"{json.dumps(arguments)[:300]}: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}"
    return None


# --- the checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TOOLS)
def test_tool_exists(name: str) -> None:
    assert name in CATALOG, f"{name} is in the manifest but not in our catalog"


@pytest.mark.parametrize("name", TOOLS)
def test_schema_accepts_every_manifest_property(name: str) -> None:
    """Names, nesting, types, enum values and the required set, compared schema to schema."""
    if name not in CATALOG:
        pytest.fail(f"{name} is not in our catalog")
    problems = _problems(name)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", TOOLS)
def test_manifest_sample_validates(name: str) -> None:
    """The smallest call the manifest allows passes our argument model."""
    if name not in CATALOG:
        pytest.fail(f"{name} is not in our catalog")
    error = _validation_error(name, _sample(MANIFEST[name]["parameters"]))
    assert error is None, error


@pytest.mark.parametrize("name", TOOLS)
def test_every_manifest_enum_value_validates(name: str) -> None:
    """Each enum value, put into the sample at its place, passes our argument model too."""
    if name not in CATALOG:
        pytest.fail(f"{name} is not in our catalog")
    schema = MANIFEST[name]["parameters"]
    errors = [
        error
        for path, value in _enum_paths(schema)
        if (error := _validation_error(name, _sample(schema, override=(path, value))))
    ]
    assert not errors, "\n".join(errors)


def test_the_comparison_can_fail() -> None:
    """A missing property, a narrowed enum, a changed type and an extra required field are all
    reported (so a passing tool means something)."""
    manifest = {
        "type": "object",
        "properties": {
            "a": {"type": "string", "enum": ["x", "y"]},
            "b": {"type": "integer"},
            "c": {"type": "array", "items": {"type": "object", "properties": {"d": {}}}},
        },
    }
    ours = {
        "type": "object",
        "properties": {
            "a": {"anyOf": [{"$ref": "#/$defs/A"}, {"type": "null"}]},
            "b": {"type": "string"},
            "c": {"type": "array", "items": {"type": "object", "properties": {}}},
            "e": {"type": "string"},
        },
        "required": ["e"],
        "$defs": {"A": {"type": "string", "enum": ["x"]}},
    }
    assert sorted(_compare(manifest, ours, ours, "t")) == [
        "t.a: enum value 'y' not accepted",
        "t.b: manifest type integer, ours string",
        "t.c[].d: missing",
        "t: we require e, the manifest does not",
    ]
