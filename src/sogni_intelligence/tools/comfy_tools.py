"""Hosted tools bound to ComfyUI workflows by the operator (`comfyui_tools`).

A bound tool keeps its hosted argument schema and validation; only its executor changes: the
call's arguments fill the workflow's `{{name}}` placeholders, the source media it names (by the
same indices the built-in tool reads) are uploaded to ComfyUI, and every output file the
workflow makes becomes an asset.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any

from sogni_intelligence.config import ComfyToolBinding
from sogni_intelligence.media.comfyui import ComfyUIClient, fill_workflow, placeholders
from sogni_intelligence.media.fetch import FetchError, FetchPolicy, fetch_into_store
from sogni_intelligence.media.sniff import MediaKind, sniff
from sogni_intelligence.media.store import AssetRecord
from sogni_intelligence.tools.base import Tool, ToolArgs, ToolContext, ToolError, ToolOutput
from sogni_intelligence.tools.media_context import KINDS, MEDIA_INDEX
from sogni_intelligence.tools.unavailable_args import Source, UnavailableArgs

#: `{{image}}` is a call's first image, `{{image_2}}` its second, and so on.
MEDIA_PLACEHOLDER = re.compile(r"^(image|video|audio)(?:_(\d+))?$")
#: Placeholder names the hosted tools spell differently in their arguments.
_ARGUMENT_NAMES = {
    "negative_prompt": ("negativePrompt",),
    "duration": ("duration_seconds",),
}


class ComfyTool:
    """The executor of one bound tool (a `Tool.run`)."""

    def __init__(self, tool: Tool, binding: ComfyToolBinding) -> None:
        self.tool = tool
        self.outputs = binding.outputs
        self.fps = binding.fps
        self.workflow = json.loads(Path(binding.workflow).expanduser().read_text())
        self.names = placeholders(self.workflow)
        self.client = ComfyUIClient(binding.base_url, binding.timeout_s, f"ComfyUI ({tool.name})")

    async def __call__(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        if isinstance(args, UnavailableArgs) and args.missing():
            raise ToolError("PARAMETER_INVALID", "; ".join(args.missing()))
        values = _values(args, self.fps)
        wanted = {n: m for n in self.names if (m := MEDIA_PLACEHOLDER.match(n))}
        unfilled = sorted(self.names - values.keys() - wanted.keys())
        if unfilled:
            raise ToolError(
                "PARAMETER_INVALID",
                f"the ComfyUI workflow of {self.tool.name} needs {', '.join(unfilled)}, which "
                "this call does not give",
            )
        media = await _source_media(self.tool, args, ctx) if wanted else {}
        for name, match in sorted(wanted.items()):
            kind: MediaKind = match.group(1)  # type: ignore[assignment]
            record = _nth(media, kind, int(match.group(2) or 1), ctx)
            path = await ctx.store.local_path(record)
            data = await asyncio.to_thread(path.read_bytes)
            values[name] = await self.client.upload(data, record.id + path.suffix)
        files = await self.client.run(fill_workflow(self.workflow, values), ctx.progress)
        assets, skipped = [], 0
        for data in files:
            found = sniff(data[:64])
            if found is None or (self.outputs and found.kind != self.outputs):
                skipped += 1
                continue
            assets.append(
                await ctx.store.put_bytes(ctx.owner, data, tool=self.tool.name, backend="comfyui")
            )
        if not assets:
            kind = f"{self.outputs} " if self.outputs else ""
            raise ToolError("GPU_WORKER_FAILED", f"ComfyUI made no {kind}output this server reads")
        warnings = [f"{skipped} other ComfyUI output(s) left out"] if skipped else []
        return ToolOutput(assets, backend="comfyui", warnings=warnings)

    async def close(self) -> None:
        await self.client.close()


def _values(args: ToolArgs, fps: float) -> dict[str, Any]:
    """Every argument by its own name, the common placeholders by theirs, and what a workflow
    may rely on: an empty negative prompt, a random seed, the frame rate and frame count."""
    given = {k: v for k, v in args.model_dump().items() if v is not None}
    values: dict[str, Any] = {k: v for k, v in given.items() if isinstance(v, str | int | float)}
    for name, spellings in _ARGUMENT_NAMES.items():
        found = next((given[s] for s in spellings if s in given), None)
        if found is not None:
            values.setdefault(name, found)
    values.setdefault("negative_prompt", "")
    values.setdefault("seed", secrets.randbelow(2**31))
    values["fps"] = int(fps) if fps == int(fps) else fps
    if isinstance(values.get("duration"), int | float):
        values["frames"] = round(values["duration"] * fps)
    return values


async def _source_media(
    tool: Tool, args: ToolArgs, ctx: ToolContext
) -> dict[str, list[AssetRecord]]:
    """The media a call names, by kind, in argument order: what `sources()` lists for a tool
    that cannot run here (then the media its `*_url` arguments give, fetched through the
    guard), else every argument its schema marks as a media index."""
    given = args.model_dump()
    if isinstance(args, UnavailableArgs):
        sources = args.sources()
        urls = {k: v for k, v in given.items() if k.endswith("_url") and isinstance(v, str)}
    else:
        sources, urls = [], {}
        for name, node in tool.parameters().get("properties", {}).items():
            kind, value = _index_kind(node), given.get(name)
            if kind is None or value is None:
                continue
            for index in value if isinstance(value, list) else [value]:
                sources.append(Source(kind, index, name))
    media: dict[str, list[AssetRecord]] = {kind: [] for kind in KINDS}
    for source in sources:
        media[source.kind].append(source.resolve(ctx))
    policy = ctx.services.fetch_policy or FetchPolicy(own_base_url=ctx.store.signer.base_url)
    for name, url in urls.items():
        try:
            record = await fetch_into_store(
                url, policy=policy, store=ctx.store, owner=ctx.owner, label=name
            )
        except FetchError as exc:
            raise ToolError("PARAMETER_INVALID", exc.message) from exc
        media[record.kind].append(record)
    return media


def _index_kind(node: dict[str, Any]) -> MediaKind | None:
    for branch in (node, *node.get("anyOf", [])):
        items = branch.get("items")
        for part in (branch, items if isinstance(items, dict) else {}):
            if MEDIA_INDEX in part:
                return part[MEDIA_INDEX]
    return None


def _nth(
    media: dict[str, list[AssetRecord]], kind: MediaKind, n: int, ctx: ToolContext
) -> AssetRecord:
    """The call's n-th medium of `kind`; the first defaults to the session's latest (as an
    omitted index does)."""
    named = media[kind]
    if n <= len(named):
        return named[n - 1]
    if n == 1:
        return ctx.media.resolve(kind, None, kind)
    raise ToolError(
        "ASSET_NOT_FOUND",
        f"the ComfyUI workflow takes {kind} {n}, and this call names {len(named)} {kind}(s)",
    )


def bind_tools(bindings: list[ComfyToolBinding], catalog: dict[str, Tool]) -> dict[str, Tool]:
    """The bound tools by name: each one the catalog's, with a ComfyUI executor. An unknown or
    twice-bound tool, or an unreadable workflow, is a configuration error."""
    bound: dict[str, Tool] = {}
    for binding in bindings:
        tool = catalog.get(binding.tool)
        if tool is None:
            raise ValueError(
                f"comfyui_tools: there is no hosted tool {binding.tool!r}; the tools are "
                + ", ".join(sorted(catalog))
            )
        if binding.tool in bound:
            raise ValueError(f"comfyui_tools: {binding.tool!r} is bound twice")
        try:
            runner = ComfyTool(tool, binding)
        except (OSError, ValueError) as exc:
            raise ValueError(f"comfyui_tools: the workflow of {binding.tool!r}: {exc}") from exc
        bound[tool.name] = replace(tool, run=runner, runs_here=True)
    return bound
