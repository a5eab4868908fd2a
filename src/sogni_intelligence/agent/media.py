"""The media a chat request brings: `media_references` and image parts become uploads of the
session's media context (indices -1, -2, … per type, in the order given), and the model is told
which index is which."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from sogni_intelligence.errors import invalid_request
from sogni_intelligence.media.fetch import FetchPolicy, fetch_into_store, refuse_early
from sogni_intelligence.media.store import AssetRecord, AssetStore
from sogni_intelligence.tools.media_context import MediaContext


def decode_data_uri(uri: str, param: str) -> bytes:
    header, sep, payload = uri.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        raise invalid_request("a data URI must be base64 (data:<type>;base64,...)", param)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid_request("the data URI is not valid base64", param) from exc


def _source(reference: dict[str, Any]) -> Any:
    return reference.get("url") or reference.get("value") or reference.get("data")


async def _reference_asset(
    owner: str, reference: dict[str, Any], param: str, store: AssetStore, policy: FetchPolicy
) -> AssetRecord:
    source = _source(reference)
    if not isinstance(source, str) or not source:
        raise invalid_request("a media reference needs url, value or data", param)
    if source.startswith("data:"):
        return await store.put_bytes(owner, decode_data_uri(source, param), tool="media_reference")
    return await fetch_into_store(source, policy=policy, store=store, owner=owner, label=param)


def attached_image(number: int) -> str:
    """What stands in a message for its n-th image (1-based) where the model cannot see it;
    the uploads note says which index that image has."""
    return f"[attached image {number}]"


def uploads_note(lines: list[str]) -> str:
    return "Media of this request, by the index tools take: " + "; ".join(lines) + "."


def with_uploads_note(messages: list[dict[str, Any]], lines: list[str]) -> list[dict[str, Any]]:
    """The note joins the leading system message (some chat templates take only one, first)."""
    if not lines:
        return messages
    note = uploads_note(lines)
    first = messages[0] if messages else None
    if first is not None and first.get("role") == "system" and isinstance(first["content"], str):
        return [{**first, "content": first["content"] + "\n\n" + note}, *messages[1:]]
    return [{"role": "system", "content": note}, *messages]


async def session_media(
    owner: str,
    references: list[dict[str, Any]],
    image_uris: list[str],
    store: AssetStore,
    policy: FetchPolicy,
) -> tuple[MediaContext, list[str]]:
    """The session's media context and one note line per upload (`image -1 = ...`)."""
    for i, reference in enumerate(references):  # refuse before anything is fetched or stored
        source = _source(reference)
        if isinstance(source, str) and not source.startswith("data:"):
            refuse_early(source, policy, f"media_references[{i}].url")
    media = MediaContext()
    lines = []
    for i, reference in enumerate(references):
        param = f"media_references.{i}"
        asset = await _reference_asset(owner, reference, param, store, policy)
        expected = reference.get("kind")
        if expected is not None and expected != asset.kind:
            raise invalid_request(f"the media is {asset.kind}, not {expected}", f"{param}.kind")
        lines.append(f"{asset.kind} {media.add_upload(asset)} = media reference {i + 1}")
    for n, uri in enumerate(image_uris, 1):
        asset = await store.put_bytes(owner, decode_data_uri(uri, "messages"), tool="chat_image")
        lines.append(f"image {media.add_upload(asset)} = attached image {n}")
    return media, lines
