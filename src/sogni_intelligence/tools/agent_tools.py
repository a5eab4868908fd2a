"""Tools of the `creative-agent` surface that steer the loop or describe the session's media:
a clarifying question and a final answer end the loop; the asset tools give every piece of
media a stable id, a label and the reference token each model family expects."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from sogni_intelligence.tools.base import (
    Tool,
    ToolArgs,
    ToolContext,
    ToolError,
    ToolOutput,
    tool_family,
)
from sogni_intelligence.tools.media_context import AssetId

AGENT_SURFACE = frozenset({"creative-agent"})
#: Tools whose call ends the loop: the turn goes back to the user.
LOOP_ENDING = frozenset({"ask_clarifying_question", "finalize_response"})


class AskClarifyingQuestionArgs(ToolArgs):
    question: str = Field(min_length=1, max_length=1000, description="What to ask the user.")
    options: list[str] | None = Field(
        None, max_length=8, description="Suggested answers, when the choice is between a few."
    )
    reason: str | None = Field(None, max_length=500, description="Why the answer is needed.")


class FinalizeResponseArgs(ToolArgs):
    summary: str = Field(min_length=1, max_length=4000, description="The answer for the user.")
    outcome: Literal["success", "partial", "failed"] = "success"


class CreateAssetManifestArgs(ToolArgs):
    media_type: Literal["image", "video", "audio"] | None = Field(
        None, description="Only this kind of media; all kinds when omitted."
    )


class InspectAssetArgs(ToolArgs):
    asset_id: AssetId


class LabelAssetArgs(ToolArgs):
    asset_id: AssetId
    label: str = Field(min_length=1, max_length=120, description="A short human name.")


Family = Literal["seedance", "minimax", "gpt-image", "ltx", "generic"]


class MapAssetsForModelArgs(ToolArgs):
    model: str = Field(min_length=1, max_length=64, description="The model the prompt is for.")
    asset_ids: list[AssetId] = Field(
        min_length=1, max_length=50, description="The assets, in the order the call passes them."
    )


class ValidateAssetReferencesArgs(ToolArgs):
    prompt: str = Field(min_length=1, max_length=8000)
    model: str = Field(min_length=1, max_length=64)
    asset_ids: list[AssetId] = Field(
        default_factory=list, max_length=50, description="The assets the call will pass."
    )


async def _ask(args: AskClarifyingQuestionArgs, ctx: ToolContext) -> ToolOutput:
    return ToolOutput(
        [], extra={"question": args.question, "options": args.options, "reason": args.reason}
    )


async def _finalize(args: FinalizeResponseArgs, ctx: ToolContext) -> ToolOutput:
    return ToolOutput([], extra={"summary": args.summary, "outcome": args.outcome})


def _entry(ctx: ToolContext, asset_id: str) -> dict[str, object]:
    for record, index in ctx.media.entries():
        if record.id == asset_id:
            return {
                **record.describe(),
                "index": index,
                "origin": "upload" if index < 0 else "generated",
                "label": ctx.media.labels.get(record.id),
            }
    raise ToolError("ASSET_NOT_FOUND", f"no asset {asset_id!r} in this session")


async def _manifest(args: CreateAssetManifestArgs, ctx: ToolContext) -> ToolOutput:
    assets = [
        _entry(ctx, record.id)
        for record, _ in ctx.media.entries()
        if args.media_type in (None, record.kind)
    ]
    return ToolOutput([], extra={"assets": assets, "count": len(assets)})


async def _inspect(args: InspectAssetArgs, ctx: ToolContext) -> ToolOutput:
    return ToolOutput([], extra={"asset": _entry(ctx, args.asset_id)})


async def _label(args: LabelAssetArgs, ctx: ToolContext) -> ToolOutput:
    _entry(ctx, args.asset_id)  # it must exist
    ctx.media.labels[args.asset_id] = args.label
    return ToolOutput([], extra={"asset": _entry(ctx, args.asset_id)})


def model_family(model: str) -> Family:
    name = model.lower()
    for prefix, family in (
        ("seedance", "seedance"),
        ("minimax", "minimax"),
        ("gpt-image", "gpt-image"),
        ("ltx", "ltx"),
    ):
        if name.startswith(prefix):
            return family  # type: ignore[return-value]
    return "generic"


_KIND_WORD = {"image": "Image", "video": "Video", "audio": "Audio"}


def reference_token(family: Family, kind: str, position: int) -> str:
    """The token a prompt uses for the `position`-th (1-based) reference of its kind."""
    word = _KIND_WORD[kind]
    if family == "seedance":
        return f"@{word}{position}"
    if family == "minimax":
        return f"<{word} {position}>"
    if family == "ltx" and kind == "image":
        return f"context_image_{position - 1}"
    return f"{word} {position}"


def _tokens(ctx: ToolContext, model: str, asset_ids: list[str]) -> list[dict[str, object]]:
    family = model_family(model)
    counts: dict[str, int] = {}
    mapped = []
    for asset_id in asset_ids:
        entry = _entry(ctx, asset_id)
        kind = str(entry["type"])
        counts[kind] = counts.get(kind, 0) + 1
        mapped.append(
            {
                "asset_id": asset_id,
                "type": kind,
                "index": entry["index"],
                "token": reference_token(family, kind, counts[kind]),
            }
        )
    return mapped


async def _map(args: MapAssetsForModelArgs, ctx: ToolContext) -> ToolOutput:
    return ToolOutput(
        [],
        extra={
            "model": args.model,
            "family": model_family(args.model),
            "references": _tokens(ctx, args.model, args.asset_ids),
        },
    )


_TOKEN_PATTERNS = {
    "seedance": r"@(Image|Video|Audio)(\d+)",
    "minimax": r"<(Image|Video|Audio) (\d+)>",
    "gpt-image": r"\b(Image) (\d+)\b",
    "generic": r"\b(Image|Video|Audio) (\d+)\b",
}


async def _validate(args: ValidateAssetReferencesArgs, ctx: ToolContext) -> ToolOutput:
    family = model_family(args.model)
    available = {m["token"] for m in _tokens(ctx, args.model, args.asset_ids)}
    if family == "ltx":
        used = set(re.findall(r"context_image_\d+", args.prompt))
    else:
        pattern = _TOKEN_PATTERNS.get(family, _TOKEN_PATTERNS["generic"])
        used = {
            reference_token(family, kind.lower(), int(n))
            for kind, n in re.findall(pattern, args.prompt)
        }
    unknown = sorted(used - available)
    return ToolOutput(
        [],
        extra={
            "valid": not unknown,
            "used": sorted(used),
            "unknown": unknown,
            "unused": sorted(available - used),
        },
    )


def _free(args: object) -> float:
    return 0.0


TOOLS = tool_family(
    "agent",
    "analysis",
    [
        Tool(
            "ask_clarifying_question",
            "Stop and ask the user one question when the request cannot be done well without "
            "their answer. Ends this turn.",
            AskClarifyingQuestionArgs,
            _ask,
            AGENT_SURFACE,
            _free,
        ),
        Tool(
            "finalize_response",
            "Finish the turn with a summary of what was made (and the outcome). Ends this turn.",
            FinalizeResponseArgs,
            _finalize,
            AGENT_SURFACE,
            _free,
        ),
        Tool(
            "create_asset_manifest",
            "List every image, video and audio of this session with its asset_id, index and label.",
            CreateAssetManifestArgs,
            _manifest,
            AGENT_SURFACE,
            _free,
        ),
        Tool(
            "inspect_asset",
            "Technical facts of one asset of this session (type, size, duration, index, label).",
            InspectAssetArgs,
            _inspect,
            AGENT_SURFACE,
            _free,
        ),
        Tool(
            "label_asset",
            "Give an asset of this session a short name to refer to it by later.",
            LabelAssetArgs,
            _label,
            AGENT_SURFACE,
            _free,
        ),
        Tool(
            "map_assets_for_model",
            "The reference token a model's prompt uses for each asset passed to it "
            "(for example @Image1 for Seedance, <Video 1> for MiniMax).",
            MapAssetsForModelArgs,
            _map,
            AGENT_SURFACE,
            _free,
        ),
        Tool(
            "validate_asset_references",
            "Check that the reference tokens in a prompt match the assets the call will pass.",
            ValidateAssetReferencesArgs,
            _validate,
            AGENT_SURFACE,
            _free,
        ),
    ],
)
