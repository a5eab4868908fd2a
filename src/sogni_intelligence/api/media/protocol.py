"""Query and response shapes of the media routes.

Query parameters arrive in camelCase from the Sogni SDK (`jobId`, `imageId`, `contentType`);
snake_case spellings are accepted too, as everywhere in the API.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

MediaFamily = Literal["image", "video", "audio"]

#: Slot types of `GET /v1/image/uploadUrl`: the documented ones plus `referenceMask` and
#: `keyframeImageN`, which the Python SDK also uploads through the image endpoint.
IMAGE_SLOT_TYPE = re.compile(
    r"^(startingImage|cnImage|referenceImage|referenceImageEnd|referenceMask"
    r"|contextImage([1-9]|1[0-6])|keyframeImage[1-9][0-9]?)$"
)
#: Slot types of `GET /v1/media/uploadUrl` (`referenceAudio`, `referenceVideo`, numbered ones…).
MEDIA_SLOT_TYPE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: Job and image ids as clients mint them (UUIDs, project ids).
CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

CONTENT_TYPES: dict[str, MediaFamily] = {
    "image/png": "image",
    "image/jpeg": "image",
    "image/jpg": "image",
    "image/webp": "image",
    "image/gif": "image",
    "video/mp4": "video",
    "video/quicktime": "video",
    "video/webm": "video",
    "audio/wav": "audio",
    "audio/x-wav": "audio",
    "audio/wave": "audio",
    "audio/mpeg": "audio",
    "audio/mp3": "audio",
    "audio/flac": "audio",
    "audio/x-flac": "audio",
    "audio/ogg": "audio",
}


def _client_id(value: str, what: str) -> str:
    if not CLIENT_ID.match(value):
        raise ValueError(f"{what} must be 1-128 characters of letters, digits, '.', '_', ':', '-'")
    return value


def _content_type(value: str | None) -> str | None:
    if value is None:
        return None
    mime = value.split(";", 1)[0].strip().lower()
    if mime not in CONTENT_TYPES:
        raise ValueError(f"unsupported contentType {value!r}; use one of {sorted(CONTENT_TYPES)}")
    return mime


class SlotQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    job_id: str = Field(validation_alias=AliasChoices("jobId", "job_id"))
    type: str = Field(validation_alias=AliasChoices("type", "slot_type", "slotType"))
    image_id: str = Field(default="", validation_alias=AliasChoices("imageId", "image_id"))

    @field_validator("job_id")
    @classmethod
    def _check_job(cls, value: str) -> str:
        return _client_id(value, "jobId")

    @field_validator("image_id")
    @classmethod
    def _check_image(cls, value: str) -> str:
        return value and _client_id(value, "imageId")


class ImageSlotQuery(SlotQuery):
    """`GET /v1/image/{uploadUrl,downloadUrl}`."""

    @field_validator("type")
    @classmethod
    def _check_type(cls, value: str) -> str:
        if not IMAGE_SLOT_TYPE.match(value):
            raise ValueError(
                f"unsupported image type {value!r}; use startingImage, cnImage, "
                "contextImage1..contextImage16, referenceImage or referenceImageEnd"
            )
        return value


class MediaSlotQuery(SlotQuery):
    """`GET /v1/media/{uploadUrl,downloadUrl}`."""

    @field_validator("type")
    @classmethod
    def _check_type(cls, value: str) -> str:
        if not MEDIA_SLOT_TYPE.match(value):
            raise ValueError("type must be 1-64 characters of letters, digits, '_' and '-'")
        return value


class ImageUploadUrlQuery(ImageSlotQuery):
    content_type: str | None = Field(
        default=None, validation_alias=AliasChoices("contentType", "content_type")
    )

    @field_validator("content_type")
    @classmethod
    def _check_content_type(cls, value: str | None) -> str | None:
        mime = _content_type(value)
        if mime is not None and CONTENT_TYPES[mime] != "image":
            raise ValueError(f"contentType {value!r} is not an image type")
        return mime


class MediaUploadUrlQuery(MediaSlotQuery):
    content_type: str | None = Field(
        default=None, validation_alias=AliasChoices("contentType", "content_type")
    )

    @field_validator("content_type")
    @classmethod
    def _check_content_type(cls, value: str | None) -> str | None:
        return _content_type(value)


class UploadUrlData(BaseModel):
    uploadUrl: str


class UploadFormData(BaseModel):
    """A presigned POST form: send `fields` and then the file (as `file`) to `url`."""

    url: str
    fields: dict[str, str]


class DownloadUrlData(BaseModel):
    downloadUrl: str


class UploadedData(BaseModel):
    assetId: str


class AssetData(BaseModel):
    asset: dict[str, Any]


class UploadUrlResponse(BaseModel):
    status: Literal["success"] = "success"
    data: UploadUrlData


class UploadFormResponse(BaseModel):
    status: Literal["success"] = "success"
    data: UploadFormData


class DownloadUrlResponse(BaseModel):
    status: Literal["success"] = "success"
    data: DownloadUrlData


class UploadedResponse(BaseModel):
    status: Literal["success"] = "success"
    data: UploadedData


class AssetResponse(BaseModel):
    status: Literal["success"] = "success"
    data: AssetData
