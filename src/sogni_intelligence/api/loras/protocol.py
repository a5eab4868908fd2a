"""Bodies and views of the LoRA routes, in the camelCase the Sogni SDK's `available_loras` and
`personal_loras` read."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from sogni_intelligence.api.wire import WireModel, printable

LoraSource = Literal["catalog", "personal"]


class LoraConstraints(BaseModel):
    """How LoRAs may be used in one request (the tools' `loras`/`loraStrengths` bounds)."""

    maxPerRequest: int = 8
    minStrength: float = -100
    maxStrength: float = 100


class LoraView(BaseModel):
    loraId: str
    name: str
    modelIds: list[str]
    bytes: int
    source: LoraSource
    defaultStrength: float = Field(default=1.0, description="The strength used when none is sent.")


class CatalogView(BaseModel):
    loras: list[LoraView]
    models: list[str] = Field(description="Every image model id that can load catalog LoRAs.")
    constraints: LoraConstraints
    lastUpdated: int | None = Field(description="When the newest LoRA file changed (ms).")


class PersonalLoraView(LoraView):
    id: str
    modelId: str
    status: Literal["ready"] = "ready"
    sourceUrl: str
    sha256: str | None = None
    createdAt: int = Field(description="Unix time in milliseconds.")


class PersonalLimits(BaseModel):
    maxLoras: int
    used: int
    maxBytes: int


class PersonalList(BaseModel):
    loras: list[PersonalLoraView]
    models: list[str] = Field(description="The image model ids a personal LoRA may be for.")
    limits: PersonalLimits


class PersonalCatalog(BaseModel):
    loras: list[PersonalLoraView]


class ImportBody(WireModel):
    """`POST /v1/loras/personal`: where the file is, what to call it, which model it is for,
    and the caller's statement that they may use it."""

    url: str = Field(min_length=1, max_length=8192)
    name: str = Field(min_length=1, max_length=200)
    model_id: str = Field(min_length=1, max_length=128)
    rights_confirmed: bool = False

    @field_validator("url", "name", "model_id")
    @classmethod
    def _check_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return printable(value.strip())


class DeletedLora(BaseModel):
    id: str
    deleted: Literal[True] = True
