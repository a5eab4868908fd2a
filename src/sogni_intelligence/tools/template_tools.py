"""A template with `exposeToLLM` offered to the model as a function tool of the
`creative-agent` surface: its name comes from the template's name, its parameters from the
template's caller inputs, and a call starts a run of the template as a durable workflow (the
way a hosted media tool runs as a one-step workflow).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import Field, ValidationError, create_model

from sogni_intelligence.errors import ToolError
from sogni_intelligence.tools.base import Tool, ToolArgs, ToolContext, ToolOutput
from sogni_intelligence.tools.template_model import MEDIA_TYPES, TemplateInput, WorkflowTemplate
from sogni_intelligence.tools.templates import compile_template

log = logging.getLogger(__name__)

PREFIX = "template_"
MAX_NAME = 64
#: How many exposed templates of one key a request offers (lowest `llmPriority` first).
MAX_EXPOSED = 16


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "workflow"


def _value_type(spec: TemplateInput) -> Any:
    if spec.type == "select":
        return Literal[tuple(option.value for option in spec.options or [])]
    if spec.type == "number":
        return float
    if spec.type == "boolean":
        return bool
    return str  # text, and a media input's http(s) URL


def _field(spec: TemplateInput) -> tuple[Any, Any]:
    kind = _value_type(spec)
    if spec.multiple is not None:
        kind = list[kind]  # type: ignore[valid-type]
    described = spec.description or spec.name
    if spec.type in MEDIA_TYPES:
        described += f" (an http(s) URL of the {spec.type})"
    if spec.required and spec.default is None:
        return kind, Field(description=described)
    return kind | None, Field(None, description=described)


def _arguments(template: WorkflowTemplate) -> type[ToolArgs]:
    """The call's arguments: the template's inputs a caller may set (internal ones are the
    server's), each with its type; the full check is the template's own at the start."""
    fields = {spec.name: _field(spec) for spec in template.inputs if not spec.internal}
    return create_model(f"{_slug(template.name).title()}Args", __base__=ToolArgs, **fields)


async def _not_a_step(args: Any, ctx: ToolContext) -> ToolOutput:
    raise ToolError("PARAMETER_INVALID", "a template runs as a workflow of its own")


def template_tool(template: Mapping[str, Any], name: str) -> Tool:
    """The function tool of one stored, exposed template."""
    parsed = WorkflowTemplate.model_validate(dict(template))
    units = parsed.estimated_capacity_units
    description = parsed.description or parsed.brief or f"Run the workflow {parsed.name!r}."

    def start(arguments: dict[str, Any]) -> dict[str, Any]:
        compiled = compile_template(parsed, {k: v for k, v in arguments.items() if v is not None})
        return {
            "input": {"title": compiled["title"], "steps": compiled["steps"]},
            "media_references": compiled["media_references"],
            "options": {"template": {"template": dict(template), "inputs": compiled["inputs"]}},
        }

    return Tool(
        name,
        f"{description} (workflow template {parsed.name!r})",
        _arguments(parsed),
        _not_a_step,
        frozenset({"creative-agent"}),
        lambda args: units.max if units is not None else 0.0,
        kind="media",
        workflow=start,
    )


def exposed_tools(templates: Iterable[Mapping[str, Any]]) -> dict[str, Tool]:
    """The tools of a key's exposed templates by name, lowest `llmPriority` first; names are
    `template_<name as a slug>`, a repeated one suffixed with a count."""
    exposed = sorted(
        (t for t in templates if t.get("exposeToLLM")),
        key=lambda t: (t.get("llmPriority", 100), t.get("name", "")),
    )[:MAX_EXPOSED]
    tools: dict[str, Tool] = {}
    for template in exposed:
        base = (PREFIX + _slug(template["name"]))[: MAX_NAME - 3]
        name, n = base, 1
        while name in tools:
            n += 1
            name = f"{base}_{n}"
        try:
            tools[name] = template_tool(template, name)
        except ValidationError:
            # Stored under older rules this server no longer accepts: running it would be
            # refused too, so the model is not offered it.
            log.warning("template %s is not offered to the model: it no longer validates", name)
    return tools
