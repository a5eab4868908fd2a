"""What a chat run tells about its media: the asset manifest (every asset of its media context,
with the index a tool call names it by) and whether its turn asks for media."""

from __future__ import annotations

from typing import Any, Literal

from sogni_intelligence.agent.driver import RoundOutput
from sogni_intelligence.agent.loop import Session
from sogni_intelligence.media.store import AssetStore
from sogni_intelligence.store.records import Record
from sogni_intelligence.tools.media_context import KINDS

#: Why a turn was judged to ask for media or not: it has no media tools, its tool choice
#: decided (a named media tool, or `none`), or the model's first round called one or did not.
DecidedBy = Literal["no_media_tools", "tool_choice", "model_tool_calls"]


async def asset_manifest(assets: AssetStore, record: Record) -> dict[str, Any]:
    """The run's media as `{"assets": [...]}`: uploads (negative indices, -1 first), then
    generated results (0-based), per media type, as the run's media context counts them (an
    asset no longer in the store takes no index). URLs are signed at reading time."""
    media = (record.data.get("state") or {}).get("media") or {}
    wanted = [a for part in media.values() for kind in KINDS for a in part.get(kind, [])]
    found = await assets.get_many(wanted, record.owner)
    produced = {artifact["id"]: artifact for artifact in record.data.get("artifacts", [])}
    entries = []
    for part, origin in (("uploads", "uploaded"), ("generated", "generated")):
        for kind in KINDS:
            present = [
                asset
                for asset_id in (media.get(part) or {}).get(kind, [])
                if (asset := found.get(asset_id)) is not None and asset.kind == kind
            ]
            for position, asset in enumerate(present):
                entry: dict[str, Any] = {
                    "assetId": asset.id,
                    "mediaType": kind,
                    "origin": origin,
                    "index": -position - 1 if part == "uploads" else position,
                    "url": assets.url(asset),
                    "mimeType": asset.mime,
                }
                artifact = produced.get(asset.id)
                if artifact is not None:
                    entry["toolName"] = artifact.get("toolName")
                    entry["workflowId"] = artifact.get("workflowId")
                entries.append(entry)
    return {"assets": entries}


def media_turn_intent(session: Session, output: RoundOutput, number: int) -> dict[str, Any]:
    """The `media_turn_intent_classified` payload of a turn's first round: the server has no
    classifier of its own, so the turn asks for media when its tool choice forces a media tool
    or the model's first round calls one."""
    media_tools = sorted(name for name, tool in session.hosted.items() if tool.kind == "media")
    choice = session.tool_choice
    forced = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    called = [
        call["function"]["name"] for call in output.calls if call["function"]["name"] in media_tools
    ]
    decided_by: DecidedBy
    if not media_tools:
        decided_by, asks = "no_media_tools", False
    elif choice == "none" or forced in media_tools:
        decided_by, asks = "tool_choice", forced in media_tools
    else:
        decided_by, asks = "model_tool_calls", bool(called)
    return {
        "round": number,
        "intent": "media" if asks else "text",
        "asksForMedia": asks,
        "decidedBy": decided_by,
        "mediaTools": media_tools,
        "toolChoice": choice,
        "mediaToolCalls": called,
    }
