"""Bodies and views of the saved-upload routes (`/v1/assets`), in the camelCase the Sogni SDK's
`projects.assets` sends and reads."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator

from sogni_intelligence.api.media.protocol import CLIENT_ID, IMAGE_SLOT_TYPE, MEDIA_SLOT_TYPE
from sogni_intelligence.api.wire import WireModel, printable
from sogni_intelligence.media.sniff import MediaKind
from sogni_intelligence.store.saved_assets import SavedState

#: The Content-Types a saved upload may declare, each with the type its bytes must sniff as
#: (the spellings clients use for one format map to one).
SAVED_TYPES: dict[str, str] = {
    "image/png": "image/png",
    "image/jpeg": "image/jpeg",
    "image/jpg": "image/jpeg",
    "image/webp": "image/webp",
    "image/gif": "image/gif",
    "video/mp4": "video/mp4",
    "video/quicktime": "video/quicktime",
    "video/webm": "video/webm",
    "audio/mpeg": "audio/mpeg",
    "audio/mp3": "audio/mpeg",
    "audio/flac": "audio/flac",
    "audio/x-flac": "audio/flac",
    "audio/wav": "audio/wav",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/ogg": "audio/ogg",
}
SAVED_KINDS: tuple[MediaKind, ...] = ("image", "video", "audio")
#: A SHA-256 in hex, kept lower-case.
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{64}$", to_lower=True)]


def declared_type(value: str) -> str:
    """The Content-Type without parameters, lower-cased, if a saved upload may have it."""
    mime = value.split(";", 1)[0].strip().lower()
    if mime not in SAVED_TYPES:
        raise ValueError(f"unsupported contentType {value!r}; use one of {sorted(SAVED_TYPES)}")
    return mime


class PrepareBody(WireModel):
    """`POST /v1/assets/prepare`: what the upload will be."""

    sha256: Sha256 | None = None
    size_bytes: int = Field(validation_alias="bytes", ge=1)
    content_type: str = Field(max_length=255)
    name: str = Field(default="Saved upload", max_length=200)

    @field_validator("content_type")
    @classmethod
    def _check_type(cls, value: str) -> str:
        return declared_type(value)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return printable(value)


class FinalizeBody(WireModel):
    """`POST /v1/assets/{id}/finalize` (the SDK sends `{}`): optionally the sha256 the stored
    bytes must have, when `prepare` was not given one."""

    sha256: Sha256 | None = None


class BindBody(WireModel):
    """`POST /v1/assets/{id}/bind`: the project input slot to copy the upload into."""

    project_id: str
    type: str
    id: str | None = None

    @field_validator("project_id", "id")
    @classmethod
    def _check_id(cls, value: str | None) -> str | None:
        if value is not None and not CLIENT_ID.match(value):
            raise ValueError("must be 1-128 characters of letters, digits, '.', '_', ':', '-'")
        return value

    @field_validator("type")
    @classmethod
    def _check_slot(cls, value: str) -> str:
        if not MEDIA_SLOT_TYPE.match(value):
            raise ValueError("type must be 1-64 characters of letters, digits, '_' and '-'")
        return value

    def slot_kind(self) -> MediaKind | None:
        """The kind of media the slot takes, when its name says (else any kind)."""
        if IMAGE_SLOT_TYPE.match(self.type):
            return "image"
        for prefix, kind in (("referenceAudio", "audio"), ("referenceVideo", "video")):
            if self.type.startswith(prefix):
                return kind  # type: ignore[return-value]
        return None


class SavedAssetView(BaseModel):
    id: str
    name: str
    state: SavedState
    contentType: str
    bytes: int
    sha256: str | None = None
    createdAt: int = Field(description="Unix time in milliseconds.")
    kind: MediaKind | None = None
    url: str | None = Field(default=None, description="A signed download URL, once ready.")
    width: int | None = None
    height: int | None = None
    durationSeconds: float | None = None


class PreparedView(SavedAssetView):
    uploadUrl: str | None = None
    uploadHeaders: dict[str, str] | None = None
    uploadExpiresAt: int | None = Field(default=None, description="Unix time in seconds.")


class Limits(BaseModel):
    maxBytes: int
    maxAssets: int
    used: int
    contentTypes: list[str]


class Capabilities(BaseModel):
    enabled: bool
    maxBytes: int
    maxAssets: int
    kinds: list[MediaKind]
    contentTypes: list[str]


class AssetPage(BaseModel):
    assets: list[SavedAssetView]
    limits: Limits
    nextCursor: str | None = Field(default=None, description="Pass as `after` for the next page.")


class BoundView(BaseModel):
    assetId: str
    projectId: str
    type: str
    id: str | None = None
    bound: Literal[True] = True


class DeletedView(BaseModel):
    id: str
    deleted: Literal[True] = True
