"""What a hosted tool is, what it gets to work with, and the result envelope it returns.

Tools do not know HTTP: they get validated arguments and a context, and return assets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from sogni_intelligence.config import QueueName
from sogni_intelligence.errors import ToolError
from sogni_intelligence.llm.grammar import GRAMMAR_SKIP
from sogni_intelligence.media.fetch import FetchPolicy
from sogni_intelligence.media.ffmpeg import MediaProcessError
from sogni_intelligence.media.music.neural import MusicModel
from sogni_intelligence.media.progress import Progress
from sogni_intelligence.media.remote_image import RemoteImageBackend
from sogni_intelligence.media.segmentation import SegmentationModel
from sogni_intelligence.media.sniff import MediaKind
from sogni_intelligence.media.store import AssetRecord, AssetStore
from sogni_intelligence.media.video.diffusion import VideoModel
from sogni_intelligence.tools.content_filter import ContentFilter
from sogni_intelligence.tools.media_context import MediaContext

Surface = Literal["creative-tools", "creative-agent"]
CREATIVE = frozenset({"creative-tools", "creative-agent"})

ToolKind = Literal["media", "agent", "composition"]
"""How a tool runs. `media`: makes or reads media, as a durable job on its queue. `agent`: answers
at once from the session's assets (a workflow step may still call it). `composition`: writes
text and plans for the LLM; never a workflow step."""


class ToolArgs(BaseModel):
    """Base of every tool's arguments: unknown arguments are refused, not ignored.

    `rarely_needed` names arguments a client may send but a model should not write unasked
    (compatibility switches, LoRAs, provider options): the call grammar of an embedded model
    leaves them out, while the schema still lists and accepts them."""

    model_config = ConfigDict(extra="forbid")
    rarely_needed: ClassVar[frozenset[str]] = frozenset()


#: Answers a JSON object of a schema: (messages, schema, max_tokens) -> the object.
TextLLM = Callable[[list[dict[str, Any]], dict[str, Any], int], Awaitable[Any]]
#: Answers a question about images: (prompt, image data URIs) -> the text.
VisionLLM = Callable[[str, list[str]], Awaitable[str]]


@dataclass
class ToolServices:
    """What tools get from the rest of the server. Each part may be missing: a tool that
    needs a missing one falls back to what it can do alone, or says what is missing."""

    #: Configured remote image backends by name.
    image_backends: dict[str, RemoteImageBackend] = field(default_factory=dict)
    #: The default model, for the composition tools.
    text_llm: TextLLM | None = None
    #: A vision-capable model, for the analysis tools.
    vision_llm: VisionLLM | None = None
    #: The operator's guard for URLs inside tool arguments (an edit mask).
    fetch_policy: FetchPolicy | None = None
    #: The operator's local segmentation model (remove_background, segment_image).
    segmentation: SegmentationModel | None = None
    #: The operator's local music model (generate_music, for its aliases).
    music: MusicModel | None = None
    #: The operator's local video model (the video tools, for its aliases).
    video: VideoModel | None = None
    #: Tools the operator bound to another executor (a ComfyUI workflow), by name: they run
    #: in place of the catalog's, with the same arguments.
    bound_tools: dict[str, Tool] = field(default_factory=dict)
    #: The operator's content filter, applied to calls whose request has it on.
    content_filter: ContentFilter = field(default_factory=ContentFilter.built_in)


@dataclass
class ToolContext:
    owner: str
    media: MediaContext
    store: AssetStore
    progress: Progress = lambda fraction, message=None: None
    services: ToolServices = field(default_factory=ToolServices)
    #: The request's `safe_content_filter` (on unless it sent false).
    safe_content_filter: bool = True


@dataclass
class ToolOutput:
    assets: list[AssetRecord]
    model: str | None = None
    backend: str | None = None
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


Executor = Callable[[Any, ToolContext], Awaitable[ToolOutput]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args: type[ToolArgs]
    run: Executor
    surfaces: frozenset[str] = CREATIVE
    cost: Callable[[Any], float] = lambda args: 1.0
    kind: ToolKind = "media"
    queue: QueueName = "analysis"
    #: Media the tool cannot work without: it is not offered to a model while the session has
    #: none of a kind named here, and a call made anyway is answered with what there is.
    needs: frozenset[MediaKind] = frozenset()
    #: Media of which the tool needs one kind or another (metadata reads any): it is not
    #: offered while the session has none of them.
    needs_any: frozenset[MediaKind] = frozenset()
    #: False for a tool whose models this server cannot run: it keeps its place in the
    #: catalog (the hosted contract), but a model is not offered it unless the request forces it.
    #: A callable decides from the services, for a tool an optional local model can serve.
    runs_here: bool | Callable[[ToolServices], bool] = True
    #: For a tool that is a whole workflow (an exposed template), not a step: a call's
    #: workflow start as `{"input", "media_references", "options"}` (a ServiceError when the
    #: arguments do not fit).
    workflow: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def runs_with(self, services: ToolServices | None) -> bool:
        if callable(self.runs_here):
            return services is not None and self.runs_here(services)
        return self.runs_here

    def parameters(self) -> dict[str, Any]:
        return self._definition["function"]["parameters"]

    def definition(self) -> dict[str, Any]:
        """The OpenAI function definition the LLM sees. Built once (a whole surface takes tens
        of milliseconds, on every round of a loop) and shared: callers must not mutate it."""
        return self._definition

    @cached_property
    def _definition(self) -> dict[str, Any]:
        parameters = clean_schema(self.args.model_json_schema())
        rare = frozenset().union(*(getattr(c, "rarely_needed", ()) for c in self.args.__mro__))
        for name, schema in parameters.get("properties", {}).items():
            if name in rare:
                schema[GRAMMAR_SKIP] = True
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": parameters,
            },
        }


def tool_family(kind: ToolKind, queue: QueueName, tools: Iterable[Tool]) -> list[Tool]:
    """A tool family's tools, each declaring the family's kind and the queue its jobs run on."""
    return [replace(tool, kind=kind, queue=queue) for tool in tools]


def clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop pydantic's titles: they add tokens and say nothing the names do not."""
    if isinstance(schema, dict):
        return {k: clean_schema(v) for k, v in schema.items() if k != "title"}
    if isinstance(schema, list):
        return [clean_schema(v) for v in schema]  # type: ignore[return-value]
    return schema


def failure(tool: str, error: ToolError) -> dict[str, Any]:
    return {
        "ok": False,
        "success": False,
        "tool": tool,
        "error_type": error.error_type,
        "message": error.message,
        "error": error.message,
        "retryable": error.retryable,
    }


async def execute(tool: Tool, arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """Validate, screen, run and wrap one tool call: every hosted tool call of every route
    passes here, so this is where the content filter applies. Never raises for a tool's own
    failure; a cancel of the calling task propagates."""
    try:
        args = tool.args.model_validate(arguments)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()
        )
        return failure(tool.name, ToolError("PARAMETER_INVALID", problems))
    run = ctx.services.bound_tools.get(tool.name, tool).run
    screen = ctx.services.content_filter if ctx.safe_content_filter else None
    try:
        if screen is not None:
            screen.check_arguments(tool.name, arguments)
        output = await run(args, ctx)
        if screen is not None:
            await screen.check_outputs(tool.name, output.assets, ctx.store)
    except ToolError as exc:
        return failure(tool.name, exc)
    except MediaProcessError as exc:
        return failure(tool.name, ToolError("UNKNOWN_ERROR", str(exc)))
    except TimeoutError:
        return failure(tool.name, ToolError("PROVIDER_TIMEOUT", "the media job timed out", True))
    ctx.progress(1.0, None)
    return envelope(tool.name, output, ctx)


#: The keys `envelope` derives from the assets and the context; the rest is the tool's own.
ENVELOPE_KEYS = frozenset(
    {
        "ok",
        "success",
        "tool",
        "status",
        "output_assets",
        "urls",
        "indices",
        "media_type",
        "model",
        "model_id",
        "backend",
        "startIndex",
        "videoStartIndex",
        "audioStartIndex",
        "warnings",
    }
)


def envelope(tool: str, output: ToolOutput, ctx: ToolContext) -> dict[str, Any]:
    """The `ok` envelope plus the keys older consumers look for (success, urls, indices…)."""
    indices = ctx.media.add_generated(output.assets)
    public = [ctx.store.public(asset) for asset in output.assets]
    kinds = {asset.kind for asset in output.assets}
    result: dict[str, Any] = {
        "ok": True,
        "success": True,
        "tool": tool,
        "status": "completed",
        "output_assets": public,
        "urls": [asset["url"] for asset in public],
        "indices": indices,
    }
    if len(kinds) == 1:
        result["media_type"] = next(iter(kinds))
    if output.model:
        result["model"] = output.model
        result["model_id"] = output.model
    if output.backend:
        result["backend"] = output.backend
    if indices:
        first = indices[0]
        if output.assets[0].kind == "image":
            result["startIndex"] = first
        elif output.assets[0].kind == "video":
            result["videoStartIndex"] = first
        else:
            result["audioStartIndex"] = first
    if output.warnings:
        result["warnings"] = output.warnings
    result.update(output.extra)
    return result
