"""What a model may write when it calls a hosted tool in this session.

A tool's schema says what any session accepts; a session has particular media. Before each
round the loop offers every tool with its session arguments narrowed to what exists: media
indices to the indices there are, media kinds to the kinds there are, asset ids to the
session's ids (an argument with nothing to point at is left out, and a tool whose needed media
is missing is not offered), so an embedded model's grammar cannot invent `sourceImageIndex: 1`
or an asset called 'image1'. Calls from models whose decoding we do not constrain (upstream
servers) are checked against the same facts, and a call that names media that is not there is
answered with what there is.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sogni_intelligence.media.sniff import MediaKind
from sogni_intelligence.tools.base import Tool, ToolServices
from sogni_intelligence.tools.media_context import (
    ASSET_ID,
    KINDS,
    LATEST_ALIAS,
    MEDIA_INDEX,
    MEDIA_KIND,
    MediaContext,
)

#: How many items of each kind a session has, generated and uploaded.
Counts = tuple[tuple[int, int], ...]
_BRANCHES = ("anyOf", "oneOf")
_MARKERS = (MEDIA_INDEX, MEDIA_KIND, ASSET_ID)


@dataclass(frozen=True)
class _Facts:
    """All the narrowing depends on, so narrowed definitions are cached by it. The asset ids
    are left empty for tools that take none, whose definitions are then shared by sessions."""

    counts: Counts
    asset_ids: tuple[str, ...] = ()

    def kinds(self) -> list[str]:
        return [kind for kind, count in zip(KINDS, self.counts, strict=True) if any(count)]


def offered_definition(
    tool: Tool, media: MediaContext, services: ToolServices | None = None
) -> dict[str, Any] | None:
    """The function definition to offer a model now, or None when the tool cannot be called
    usefully in this session (it needs media of a kind there is none of, or models this
    server does not run)."""
    if not tool.runs_with(services):
        return None
    ids = tuple(record.id for record, _ in media.entries()) if _takes(tool, ASSET_ID) else ()
    return _narrowed(tool, _Facts(_counts(media), ids))


def call_problems(tool: Tool, arguments: dict[str, Any], media: MediaContext) -> list[str]:
    """Why a call cannot run on this session's media, each in words the model can act on
    (empty when it can). Other argument errors are the tool's own validation's."""
    missing = [kind for kind in sorted(tool.needs) if not media.indices(kind)]
    if missing:
        return [
            f"{tool.name} needs {_article(kind)} {kind} and {media.describe(kind)}: generate "
            f"one first, or ask the user to upload one"
            for kind in missing
        ]
    if tool.needs_any and not any(media.indices(kind) for kind in tool.needs_any):
        kinds = ", ".join(sorted(tool.needs_any))
        return [
            f"{tool.name} needs media ({kinds}) and this session has none yet: generate some "
            "first, or ask the user to upload some"
        ]
    parameters = tool.parameters()
    definitions = parameters.get("$defs") or {}
    found = _session_problems(parameters, arguments, "", media, definitions)
    return list(dict.fromkeys(found))


def _counts(media: MediaContext) -> Counts:
    return tuple((len(media.generated[k]), len(media.uploads[k])) for k in KINDS)


def _allowed(kind: MediaKind, counts: Counts, latest_alias: bool) -> list[int]:
    generated, uploads = counts[KINDS.index(kind)]
    allowed = list(range(generated)) + [-i - 1 for i in range(uploads)]
    if latest_alias and generated and -1 not in allowed:
        allowed.append(-1)
    return allowed


@lru_cache(maxsize=256)
def _takes(tool: Tool, marker: str) -> bool:
    """Whether any argument of the tool carries `marker`."""
    return marker in repr(tool.definition())


@lru_cache(maxsize=1024)
def _narrowed(tool: Tool, facts: _Facts) -> dict[str, Any] | None:
    if any(not _allowed(kind, facts.counts, False) for kind in tool.needs):
        return None
    if tool.needs_any and not tool.needs_any & set(facts.kinds()):
        return None
    definition = tool.definition()
    if not any(_takes(tool, marker) for marker in _MARKERS):
        return definition
    parameters = copy.deepcopy(definition["function"]["parameters"])
    definitions = parameters.pop("$defs", {})
    kept = _narrow_definitions(definitions, facts)
    narrowed = _narrow(parameters, facts, kept)
    if narrowed is None:
        return None
    live = {name: schema for name, schema in kept.items() if schema is not None}
    if live:
        narrowed["$defs"] = live
    return {**definition, "function": {**definition["function"], "parameters": narrowed}}


def _narrow_definitions(
    definitions: dict[str, Any], facts: _Facts
) -> dict[str, dict[str, Any] | None]:
    """Each shared definition narrowed; None for one no value can satisfy (which makes every
    reference to it unsatisfiable too, so the pass repeats until nothing more drops out)."""
    kept: dict[str, dict[str, Any] | None] = dict(definitions)
    while True:
        narrowed = {name: _narrow(schema, facts, kept) for name, schema in kept.items()}
        if _dropped(narrowed) == _dropped(kept):
            return narrowed
        kept = narrowed


def _dropped(definitions: dict[str, Any]) -> set[str]:
    return {name for name, schema in definitions.items() if schema is None}


def _narrow(node: Any, facts: _Facts, definitions: dict[str, Any]) -> Any:
    """`node` with each session argument (index, kind, asset id) replaced by the values that
    exist; None when no value can satisfy it. Optional properties that cannot be satisfied are
    left out."""
    if not isinstance(node, dict):
        return node
    allowed = _session_values(node, facts)
    if allowed is not None:
        if not allowed:
            return None
        keep = {k: v for k, v in node.items() if k in ("description", "default")}
        return {**keep, "enum": allowed}
    ref = node.get("$ref")
    if isinstance(ref, str) and definitions.get(ref.rsplit("/", 1)[-1], {}) is None:
        return None
    out = dict(node)
    for key in _BRANCHES:
        if key in node:
            narrowed = [_narrow(b, facts, definitions) for b in node[key]]
            branches = [b for b in narrowed if b is not None]
            if all(b.get("type") == "null" for b in branches):
                return None  # nothing left to point at: leave the argument out
            out[key] = branches
    if isinstance(node.get("items"), dict):
        items = _narrow(node["items"], facts, definitions)
        if items is None:
            return None  # an array that could only be empty says nothing
        if MEDIA_INDEX in node["items"] and node.get("minItems", 0) > len(items["enum"]):
            return None  # a list of more media than the session has (a join of one video)
        out["items"] = items
    if "properties" in node:
        required = set(node.get("required") or ())
        properties = {}
        for name, schema in node["properties"].items():
            narrowed = _narrow(schema, facts, definitions)
            if narrowed is not None:
                properties[name] = narrowed
            elif name in required:
                return None
        out["properties"] = properties
    return out


def _session_values(node: dict[str, Any], facts: _Facts) -> list[Any] | None:
    """The values a session argument may take now; None for a schema that is none."""
    kind = node.get(MEDIA_INDEX)
    if kind is not None:
        allowed = _allowed(kind, facts.counts, bool(node.get(LATEST_ALIAS)))
        return sorted(allowed, key=lambda i: (i < 0, abs(i)))
    if node.get(MEDIA_KIND):
        return [kind for kind in node["enum"] if kind in facts.kinds()]
    if node.get(ASSET_ID):
        return list(facts.asset_ids)
    return None


def _session_problems(
    node: Any, value: Any, path: str, media: MediaContext, definitions: dict[str, Any]
) -> Iterator[str]:
    """Walk `value` along its schema and name every index, kind or asset id that points at
    nothing."""
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str):
        node = definitions.get(ref.rsplit("/", 1)[-1]) or {}
    kind = node.get(MEDIA_INDEX)
    if kind is not None and isinstance(value, int) and not isinstance(value, bool):
        allowed = media.indices(kind)
        if node.get(LATEST_ALIAS) and media.generated[kind]:
            allowed.append(-1)
        if value not in allowed:
            yield f"{path}={value} points at no {kind}: {media.describe(kind)}"
    if node.get(MEDIA_KIND) and value in KINDS and not media.indices(value):
        yield f"{path}={value!r}: {media.describe(value)}"
    if node.get(ASSET_ID) and isinstance(value, str):
        ids = [record.id for record, _ in media.entries()]
        if value not in ids:
            known = ", ".join(ids) if ids else "none yet"
            yield f"{path}={value!r} is no asset of this session (its asset ids: {known})"
    for key in _BRANCHES:
        for branch in node.get(key) or ():
            yield from _session_problems(branch, value, path, media, definitions)
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        for position, item in enumerate(value):
            yield from _session_problems(
                node["items"], item, f"{path}[{position}]", media, definitions
            )
    if isinstance(value, dict):
        for name, schema in (node.get("properties") or {}).items():
            if name in value:
                where = f"{path}.{name}" if path else name
                yield from _session_problems(schema, value[name], where, media, definitions)


def _article(kind: str) -> str:
    return "an" if kind[0] in "aeiou" else "a"
