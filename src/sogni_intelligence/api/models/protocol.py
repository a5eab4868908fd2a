"""Wire models of the model list (OpenAI fields plus what serves each id)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class PoolMemberCard(BaseModel):
    """One engine of a pooled model, as the pool sees it now."""

    engine: Literal["embedded", "upstream"]
    url: str | None = Field(description="An upstream's address, without credentials.")
    served_by: str
    weight: float
    healthy: bool
    in_flight: int = Field(description="Requests it is answering now.")
    failures: int = Field(description="Failed checks or requests in a row.")
    last_error: str | None = Field(description="The last failure, also after it came back.")


class ModelCapabilities(BaseModel):
    vision: bool
    tools: Literal["native", "grammar", "upstream"]
    json_schema: bool = True


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "sogni"
    engine: Literal["embedded", "upstream", "mixed"]
    served_by: str
    alias_of: str | None = None
    default: bool = False
    slots: int | None = None
    capabilities: ModelCapabilities
    pool: list[PoolMemberCard] | None = Field(
        default=None, description="The engines that share the model's requests, with health."
    )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
