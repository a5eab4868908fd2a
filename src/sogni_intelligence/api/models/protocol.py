"""Wire models of the model list (OpenAI fields plus what serves each id)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class ModelCapabilities(BaseModel):
    vision: bool
    tools: Literal["native", "grammar", "upstream"]
    json_schema: bool = True


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "sogni"
    engine: Literal["embedded", "upstream"]
    served_by: str
    alias_of: str | None = None
    default: bool = False
    slots: int | None = None
    capabilities: ModelCapabilities


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
