"""Media a request brings, taken into the asset store and a session's media context.

Chat completions, durable chat runs and creative workflows all accept media with a request
(URLs, and for completions base64 data URIs). Each names its pieces as `MediaInput`s and calls
`ingest`, so every entry point gets the same guard, the same kind check and the same indices:
uploads count -1, -2, … per media type in the order given; a continued session's earlier
results count 0, 1, ….
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sogni_intelligence.errors import invalid_request
from sogni_intelligence.media.fetch import FetchPolicy, fetch_into_store, refuse_early
from sogni_intelligence.media.sniff import MediaKind
from sogni_intelligence.media.store import AssetRecord, AssetStore
from sogni_intelligence.tools.media_context import MediaContext


@dataclass(frozen=True)
class MediaInput:
    """One piece of a request's media: an http(s) URL or a base64 data URI."""

    source: str
    #: How the model and error messages name it ("media reference 2", "attached image 1").
    label: str
    #: The request field it came from, named by a refusal.
    param: str
    #: The kind the caller says it is; a different kind is refused.
    kind: MediaKind | None = None
    #: An earlier result of a continued session (a non-negative index) rather than an upload.
    generated: bool = False


@dataclass(frozen=True)
class Ingested:
    input: MediaInput
    asset: AssetRecord
    index: int

    def note(self) -> str:
        """The line that tells the model which index this piece has (`image -1 = ...`)."""
        return f"{self.asset.kind} {self.index} = {self.input.label}"


def decode_data_uri(uri: str, param: str) -> bytes:
    header, sep, payload = uri.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        raise invalid_request("a data URI must be base64 (data:<type>;base64,...)", param)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid_request("the data URI is not valid base64", param) from exc


def media_location(reference: dict[str, Any]) -> str | None:
    """The media of a reference: `url`, else `value`, else `data`."""
    for key in ("url", "value", "data"):
        value = reference.get(key)
        if isinstance(value, str) and value:
            return value
    return None


async def ingest(
    owner: str,
    inputs: Sequence[MediaInput],
    store: AssetStore,
    policy: FetchPolicy,
    start: MediaContext | None = None,
) -> tuple[MediaContext, list[Ingested]]:
    """Store every input (fetching URLs through the guard) and build the media context they
    make (on top of `start`, when given). URLs no fetch could take are refused before
    anything is fetched or stored."""
    for item in inputs:
        if not item.source.startswith("data:"):
            refuse_early(item.source, policy, item.param)
    media = start if start is not None else MediaContext()
    ingested = []
    for item in inputs:
        if item.source.startswith("data:"):
            data = decode_data_uri(item.source, item.param)
            asset = await store.put_bytes(owner, data, tool="media_reference")
        else:
            asset = await fetch_into_store(
                item.source, policy=policy, store=store, owner=owner, label=item.label
            )
        if item.kind is not None and item.kind != asset.kind:
            raise invalid_request(
                f"the media is {asset.kind}, not {item.kind}", f"{item.param}.kind"
            )
        index = media.add_generated([asset])[0] if item.generated else media.add_upload(asset)
        ingested.append(Ingested(item, asset, index))
    return media, ingested
