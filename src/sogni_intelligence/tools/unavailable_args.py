"""What the tools that cannot run here share: their argument base, the media a call names and
checked media URLs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator

from sogni_intelligence.media.fetch import FetchError, validate_url
from sogni_intelligence.media.sniff import MediaKind
from sogni_intelligence.media.store import AssetRecord
from sogni_intelligence.tools.base import ToolArgs, ToolContext


def _check_url(value: str) -> str:
    try:
        validate_url(value)
    except FetchError as exc:
        raise ValueError(exc.message) from exc
    return value.strip()


MediaUrl = Annotated[str, AfterValidator(_check_url)]


@dataclass(frozen=True)
class Source:
    """One media input a call names (or implies), checked before anything else happens."""

    kind: MediaKind
    index: int | None
    argument: str
    upload_position: bool = False  # a 0-based position in the uploads (negative tolerated)

    def resolve(self, ctx: ToolContext) -> AssetRecord:
        if self.upload_position and self.index is not None and self.index >= 0:
            return ctx.media.resolve_upload(self.kind, self.index, self.argument)
        return ctx.media.resolve(self.kind, self.index, self.argument)


class UnavailableArgs(ToolArgs):
    """Arguments of a tool that cannot run here, and what its executor checks before saying so:
    what the call still lacks, the media it names and the model it asked for.

    Validation refuses bad values and contradictions; inputs needed only in some combinations
    are named by `missing` when the tool runs, so that the smallest call the hosted schema
    allows still validates (as a workflow plan step, for instance)."""

    def missing(self) -> list[str]:
        return []

    def sources(self) -> list[Source]:
        return []

    def requested_model(self) -> str | None:
        return None


Ranges = dict[str, tuple[float, float]]


def check_duration(model: str | None, duration: float | None, ranges: Ranges) -> None:
    """Refuse a duration outside the range of the model family the call picked."""
    if model is None or duration is None:
        return
    for prefix, (low, high) in ranges.items():
        if model.startswith(prefix):
            if not low <= duration <= high:
                raise ValueError(f"duration for {model} must be {low}-{high} seconds")
            return
