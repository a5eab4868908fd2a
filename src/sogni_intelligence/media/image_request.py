"""What every image backend takes and honours: the request, the optional features it may
support, and the protocol the remote and diffusers backends implement."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from sogni_intelligence.config import ImageBackendConfig
from sogni_intelligence.media.progress import Progress

#: Optional parts of a request a backend may or may not honour.
Feature = Literal[
    "seed",
    "negative_prompt",
    "source",
    "strength",
    "guidance",
    "mask",
    "gpt_quality",
    "gpt_background",
    "output_compression",
    "loras",
    "restore_quality",
]


@dataclass(frozen=True)
class ImageRequest:
    prompt: str
    width: int
    height: int
    seed: int
    count: int = 1
    negative_prompt: str | None = None
    source_png: bytes | None = None
    #: How far the result may move away from the source (0 keeps it, 1 ignores it).
    strength: float | None = None
    guidance: float | None = None
    #: PNG whose transparent pixels mark where the source may change.
    mask_png: bytes | None = None
    gpt_quality: str | None = None
    gpt_background: str | None = None
    output_compression: int | None = None
    output_format: str | None = None
    #: LoRA weight files to apply, in order, with their strengths (resolved by the tool layer).
    lora_files: list[tuple[Path, float]] = field(default_factory=list)


class RemoteImageBackend(Protocol):
    name: str
    aliases: list[str]
    features: frozenset[Feature]

    async def generate(self, request: ImageRequest, progress: Progress) -> list[bytes]: ...

    async def close(self) -> None: ...


@runtime_checkable
class LoraBackend(Protocol):
    """A backend that applies LoRA files: their ids resolve by its configuration (its
    `lora_dirs`, and personal LoRAs imported for its model ids)."""

    config: ImageBackendConfig
