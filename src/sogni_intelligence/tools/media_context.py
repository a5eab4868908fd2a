"""The media index convention shared by every `*Index` argument.

Non-negative indices point into what this session generated, one 0-based list per media type,
stable across tool rounds. Negative indices point into the uploads of that type (-1 is the
first). An omitted index means the latest generated item, else the first upload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field

from sogni_intelligence.errors import ToolError
from sogni_intelligence.media.sniff import MediaKind
from sogni_intelligence.media.store import AssetRecord, AssetStore

KINDS: tuple[MediaKind, ...] = ("image", "video", "audio")
#: A context as asset ids, part ("uploads", "generated") -> kind -> ids in index order: what a
#: durable record keeps, since the assets themselves live in the store.
MediaIds = dict[str, dict[str, list[str]]]

#: The schema keyword that marks an integer argument as an index into the session's media of
#: one kind: what lets a call's grammar list the indices that exist, and its check name them.
MEDIA_INDEX = "x-media-index"
#: Marks an index argument where -1 also means "the latest one" (extend and replace a video).
LATEST_ALIAS = "x-media-latest"

#: Marks a string argument that names a kind of media (image, video, audio): a call grammar
#: offers the kinds the session has.
MEDIA_KIND = "x-media-kind"
#: Marks a string argument that is the id of one of the session's assets.
ASSET_ID = "x-asset-id"

ImageIndex = Annotated[int, Field(json_schema_extra={MEDIA_INDEX: "image"})]
VideoIndex = Annotated[int, Field(json_schema_extra={MEDIA_INDEX: "video"})]
AudioIndex = Annotated[int, Field(json_schema_extra={MEDIA_INDEX: "audio"})]
LatestVideoIndex = Annotated[
    int, Field(json_schema_extra={MEDIA_INDEX: "video", LATEST_ALIAS: True})
]
SessionMediaKind = Annotated[MediaKind, Field(json_schema_extra={MEDIA_KIND: True})]
AssetId = Annotated[str, Field(min_length=1, max_length=64, json_schema_extra={ASSET_ID: True})]


@dataclass
class MediaContext:
    uploads: dict[str, list[AssetRecord]] = field(default_factory=lambda: {k: [] for k in KINDS})
    generated: dict[str, list[AssetRecord]] = field(default_factory=lambda: {k: [] for k in KINDS})
    labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    async def load(cls, assets: AssetStore, owner: str, ids: MediaIds) -> MediaContext:
        """The context `ids` describe (see `asset_ids`), read from the store; an asset that is
        gone, or not of its list's kind, is left out."""
        media = cls()
        wanted = [a for part in ids.values() for kind in KINDS for a in part.get(kind, [])]
        found = await assets.get_many(wanted, owner)
        for part in ("uploads", "generated"):
            for kind in KINDS:
                for asset_id in ids.get(part, {}).get(kind, []):
                    record = found.get(asset_id)
                    if record is None or record.kind != kind:
                        continue
                    if part == "uploads":
                        media.add_upload(record)
                    else:
                        media.add_generated([record])
        return media

    def asset_ids(self) -> MediaIds:
        """The ids behind every index, so a workflow can rebuild the same context."""
        return {
            "uploads": {k: [r.id for r in v] for k, v in self.uploads.items()},
            "generated": {k: [r.id for r in v] for k, v in self.generated.items()},
        }

    def entries(self) -> list[tuple[AssetRecord, int]]:
        """Every asset with its index: uploads (negative) first, then generated results."""
        out = [(r, -i - 1) for items in self.uploads.values() for i, r in enumerate(items)]
        out += [(r, i) for items in self.generated.values() for i, r in enumerate(items)]
        return out

    def add_upload(self, record: AssetRecord) -> int:
        """Register an upload; returns its (negative) index."""
        items = self.uploads[record.kind]
        items.append(record)
        return -len(items)

    def add_generated(self, records: list[AssetRecord]) -> list[int]:
        """Append results; returns their 0-based indices in their type's list."""
        indices = []
        for record in records:
            items = self.generated[record.kind]
            items.append(record)
            indices.append(len(items) - 1)
        return indices

    def indices(self, kind: MediaKind) -> list[int]:
        """Every index that points at an item of `kind`: generated ones, then uploads."""
        generated = list(range(len(self.generated[kind])))
        return generated + [-i - 1 for i in range(len(self.uploads[kind]))]

    def describe(self, kind: MediaKind) -> str:
        """What a model may index of `kind`, in words, for an error it has to act on."""
        generated, uploads = len(self.generated[kind]), len(self.uploads[kind])
        if not generated and not uploads:
            return f"this session has no {kind} yet"
        parts = []
        if generated:
            parts.append(f"generated {kind}s at {_span(0, generated - 1)}")
        if uploads:
            parts.append(f"uploaded {kind}s at {_span(-1, -uploads)}")
        return "this session has " + " and ".join(parts)

    def resolve(self, kind: MediaKind, index: int | None, argument: str) -> AssetRecord:
        if index is None:
            if self.generated[kind]:
                return self.generated[kind][-1]
            if self.uploads[kind]:
                return self.uploads[kind][0]
            raise ToolError(
                "ASSET_NOT_FOUND", f"no {kind} is available for {argument}: generate or upload one"
            )
        items = self.generated[kind] if index >= 0 else self.uploads[kind]
        position = index if index >= 0 else -index - 1
        if position >= len(items):
            where = "generated" if index >= 0 else "uploaded"
            raise ToolError(
                "ASSET_NOT_FOUND",
                f"{argument}={index} points at no {where} {kind} (there are {len(items)})",
            )
        return items[position]

    def resolve_upload(self, kind: MediaKind, index: int, argument: str) -> AssetRecord:
        """For the arguments documented as 0-based upload indices."""
        items = self.uploads[kind]
        if not 0 <= index < len(items):
            raise ToolError("ASSET_NOT_FOUND", f"{argument}={index} points at no uploaded {kind}")
        return items[index]

    def latest_video_or_first_upload(self, index: int | None, argument: str) -> AssetRecord:
        """`videoIndex: -1` in extend/replace means the latest video, else the first upload."""
        if index is None or index == -1:
            return self.resolve("video", None, argument)
        return self.resolve("video", index, argument)


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}..{last}"
