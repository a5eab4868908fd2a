"""The media a chat request brings: `media_references` and image parts become uploads of the
session's media context (indices -1, -2, … per type, in the order given), and the model is told
which index is which."""

from __future__ import annotations

from typing import Any

from sogni_intelligence.errors import invalid_request
from sogni_intelligence.media.fetch import FetchPolicy
from sogni_intelligence.media.store import AssetStore
from sogni_intelligence.tools.media_context import MediaContext
from sogni_intelligence.tools.media_inputs import MediaInput, ingest, media_location


def attached_image(number: int) -> str:
    """What stands in a message for its n-th image (1-based) where the model cannot see it;
    the uploads note says which index that image has."""
    return f"[attached image {number}]"


def uploads_note(lines: list[str]) -> str:
    return "Media of this request, by the index tools take: " + "; ".join(lines) + "."


def note_takes_a_message(messages: list[dict[str, Any]]) -> bool:
    """Whether an uploads note comes as a message of its own (else it joins the first)."""
    first = messages[0] if messages else None
    return not (
        first is not None and first.get("role") == "system" and isinstance(first["content"], str)
    )


def with_uploads_note(messages: list[dict[str, Any]], lines: list[str]) -> list[dict[str, Any]]:
    """The note joins the leading system message (some chat templates take only one, first)."""
    if not lines:
        return messages
    note = uploads_note(lines)
    if note_takes_a_message(messages):
        return [{"role": "system", "content": note}, *messages]
    first = messages[0]
    return [{**first, "content": first["content"] + "\n\n" + note}, *messages[1:]]


async def session_media(
    owner: str,
    references: list[dict[str, Any]],
    image_uris: list[str],
    store: AssetStore,
    policy: FetchPolicy,
) -> tuple[MediaContext, list[str]]:
    """The session's media context and one note line per upload (`image -1 = ...`):
    `media_references` first, then the messages' images."""
    inputs = []
    for i, reference in enumerate(references):
        param = f"media_references.{i}"
        source = media_location(reference)
        if source is None:
            raise invalid_request("a media reference needs url, value or data", param)
        inputs.append(MediaInput(source, f"media reference {i + 1}", param, reference.get("kind")))
    inputs += [
        MediaInput(uri, f"attached image {n}", "messages") for n, uri in enumerate(image_uris, 1)
    ]
    media, ingested = await ingest(owner, inputs, store, policy)
    return media, [item.note() for item in ingested]
