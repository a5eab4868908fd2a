"""Arguments of the image tools and the size rules they share.

Groups of arguments that several tools take (output shape, variations, GPT Image options,
LoRAs, re-framing a source image) are one mixin each, so each tool's model lists only what it
adds. Names, enums and ranges follow the hosted tools' manifest; our own extras stay optional.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from sogni_intelligence.media.models import DEFAULT_IMAGE_MODEL, IMAGE_MODELS
from sogni_intelligence.tools.base import ToolArgs
from sogni_intelligence.tools.media_context import ImageIndex

MIN_SIDE, MAX_SIDE = 256, 4096
DEFAULT_SIDE = 1024
# Source-based tools never return an edge under this many pixels (whatever the scale).
SMALL_SIDE = 480
MAX_RATIO = 4.0
MAX_PROMPT = 32000

OutputFormat = Literal["png", "jpg", "jpeg", "webp"]
Scale = Literal[1, 1.5, 2, 3, 4]
_NAMED = {"square": (1, 1), "landscape": (16, 9), "portrait": (9, 16)}
_RATIO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*[:/]\s*(\d+(?:\.\d+)?)\s*$")
_PIXELS = re.compile(r"^\s*(\d+)\s*[x×X*]\s*(\d+)\s*$")


@dataclass(frozen=True)
class Aspect:
    """A requested shape: a width/height ratio, and the exact pixels when those were given."""

    ratio: float
    pixels: tuple[int, int] | None = None


def parse_aspect(text: str) -> Aspect:
    """`16:9`, `4:5`, `1920x1080` or `square`/`landscape`/`portrait`; ValueError otherwise."""
    named = _NAMED.get(text.strip().lower())
    if named:
        return Aspect(named[0] / named[1])
    if match := _PIXELS.match(text):
        width, height = int(match.group(1)), int(match.group(2))
        if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
            raise ValueError(f"exact pixels must be {MIN_SIDE}-{MAX_SIDE} on each edge")
        aspect = Aspect(width / height, (width, height))
    elif match := _RATIO.match(text):
        width, height = float(match.group(1)), float(match.group(2))
        if not width or not height:
            raise ValueError("a ratio needs two positive numbers")
        aspect = Aspect(width / height)
    else:
        raise ValueError("use a ratio such as 16:9, 9:16, 4:5 or exact pixels such as 1920x1080")
    if not 1 / MAX_RATIO <= aspect.ratio <= MAX_RATIO:
        raise ValueError(f"the ratio may be at most {MAX_RATIO:g}:1 either way")
    return aspect


def snap(value: float) -> int:
    """An edge aligned to 8 px inside the supported range."""
    return max(MIN_SIDE, min(MAX_SIDE, round(value / 8) * 8))


def fit(width: float, height: float, smallest: int = MIN_SIDE) -> tuple[int, int]:
    """(width, height) scaled as a whole into the supported range, then aligned to 8 px."""
    factor = max(1.0, smallest / min(width, height))
    factor = min(factor, MAX_SIDE / max(width, height))
    return snap(width * factor), snap(height * factor)


def reshaped(base: tuple[int, int], ratio: float) -> tuple[float, float]:
    """`base`'s longest edge kept, the other set by `ratio` (width / height)."""
    longest = max(base)
    return (longest, longest / ratio) if ratio >= 1 else (longest * ratio, longest)


def _own_fields_first(schema: dict[str, Any], cls: type) -> None:
    """A model writes arguments in schema order, so a tool's own arguments (prompt, source)
    come before the shared groups it inherits."""
    properties = schema.get("properties", {})
    own = {name: properties[name] for name in cls.__annotations__ if name in properties}
    schema["properties"] = own | properties


class ImageToolArgs(ToolArgs):
    model_config = ConfigDict(json_schema_extra=_own_fields_first)


class AspectArgs(ImageToolArgs):
    aspectRatio: str | None = Field(
        None,
        description="Only when a shape is asked for: a ratio (16:9, 9:16, 4:5, 1:1, 4:3, "
        "3:2, 21:9) or exact pixels (1920x1080). Omitted, a source image keeps its own shape.",
    )

    @field_validator("aspectRatio")
    @classmethod
    def _known_shape(cls, value: str | None) -> str | None:
        if value is not None:
            parse_aspect(value)
        return value

    def aspect(self) -> Aspect | None:
        return None if self.aspectRatio is None else parse_aspect(self.aspectRatio)

    def shaped(self, source: tuple[int, int]) -> tuple[float, float]:
        """`source`'s size in the asked shape: its exact pixels, or `source`'s longest edge."""
        aspect = self.aspect()
        if aspect is None:
            return source
        return aspect.pixels or reshaped(source, aspect.ratio)


class SizeArgs(AspectArgs):
    width: float | None = Field(
        None,
        ge=MIN_SIDE,
        le=MAX_SIDE,
        description="Output width in px (aligned to 8 px); alone, the height follows the shape.",
    )
    height: float | None = Field(
        None,
        ge=MIN_SIDE,
        le=MAX_SIDE,
        description="Output height in px (aligned to 8 px); alone, the width follows the shape.",
    )

    def output_size(self, base: tuple[int, int]) -> tuple[int, int]:
        """Width and height win; one of them takes the other from the shape (aspectRatio, else
        `base`'s); aspectRatio alone gives its exact pixels or keeps `base`'s longest edge;
        nothing asked for gives `base` itself."""
        aspect = self.aspect()
        ratio = aspect.ratio if aspect else base[0] / base[1]
        if self.width and self.height:
            return snap(self.width), snap(self.height)
        if self.width:
            return snap(self.width), snap(self.width / ratio)
        if self.height:
            return snap(self.height * ratio), snap(self.height)
        if aspect and aspect.pixels:
            return fit(*aspect.pixels)
        return fit(*reshaped(base, ratio)) if aspect else base

    def size_warnings(self) -> list[str]:
        if self.width and self.height and self.aspectRatio is not None:
            return ["aspectRatio: not used, width and height are both given"]
        return []


class ReframeArgs(AspectArgs):
    """Source-based tools: the result has the source's size times `scale`, in a new shape if
    aspectRatio asks for one, and never an edge under 480 px."""

    scale: Scale = Field(1, description="Output size relative to the source image.")

    def output_size(self, source: tuple[int, int]) -> tuple[tuple[int, int], list[str]]:
        aspect = self.aspect()
        if aspect and aspect.pixels:
            warnings = (
                ["scale: not used, aspectRatio gives exact pixels"] if self.scale != 1 else []
            )
            return fit(*aspect.pixels), warnings
        width, height = self.shaped(source)
        width, height = width * self.scale, height * self.scale
        warnings = []
        if max(width, height) > MAX_SIDE:
            warnings.append(f"scale: the result is limited to {MAX_SIDE} px on its longest edge")
        return fit(width, height, smallest=SMALL_SIDE), warnings


class VariationArgs(ImageToolArgs):
    numberOfVariations: int = Field(
        1, ge=1, le=16, description="How many images to make (each with the next seed)."
    )
    seed: int = Field(
        -1, ge=-1, le=2**32 - 1, description="Same seed, same picture; -1 picks one at random."
    )

    def seeds(self) -> list[int]:
        base = self.seed if self.seed >= 0 else secrets.randbelow(2**31)
        return [(base + i) % 2**32 for i in range(self.numberOfVariations)]


class OutputArgs(ImageToolArgs):
    outputFormat: OutputFormat = Field("png", description="File format of the results.")

    @property
    def fmt(self) -> str:
        return "jpg" if self.outputFormat == "jpeg" else self.outputFormat


class GptImageArgs(OutputArgs):
    rarely_needed = frozenset(
        {"gptImageQuality", "gptImageBackground", "gptImageOutputCompression"}
    )
    gptImageQuality: Literal["low", "medium", "high", "xhigh", "max"] | None = Field(
        None, description="GPT Image rendering effort, only when asked for."
    )
    gptImageBackground: Literal["auto", "opaque", "transparent"] | None = Field(
        None, description="transparent needs PNG or WebP output."
    )
    gptImageOutputCompression: int | None = Field(
        None, ge=0, le=100, description="JPEG/WebP quality 0-100 (100 keeps the most detail)."
    )

    @property
    def transparent(self) -> bool:
        return self.gptImageBackground == "transparent"

    def encoding_warnings(self) -> list[str]:
        warnings = []
        if self.transparent and self.fmt == "jpg":
            warnings.append("gptImageBackground: JPEG cannot keep transparency, it is opaque")
        if self.gptImageOutputCompression is not None and self.fmt == "png":
            warnings.append("gptImageOutputCompression: not used for PNG output")
        return warnings


class LoraArgs(ImageToolArgs):
    rarely_needed = frozenset({"loras", "loraStrengths"})
    loras: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None,
        min_length=1,
        max_length=8,
        description="LoRA ids applied in this order (they do not commute).",
    )
    loraStrengths: list[float] | None = Field(
        None,
        min_length=1,
        max_length=8,
        description="One strength per LoRA, same order; omitted, each is 1.0. Negative values "
        "push a two-way LoRA the other way.",
    )

    @model_validator(mode="after")
    def _aligned(self) -> LoraArgs:
        if self.loraStrengths is not None:
            if self.loras is None:
                raise ValueError("loraStrengths needs loras")
            if len(self.loraStrengths) != len(self.loras):
                raise ValueError("loraStrengths needs one value per entry of loras")
        return self


class ImageModelArgs(ImageToolArgs):
    model: str = Field(
        DEFAULT_IMAGE_MODEL,
        description="Image model id; leave it out unless the user names a model. An id this "
        "server does not know is refused with the list of those it has.",
        # Listed for clients and call grammars; configured backends may add aliases.
        json_schema_extra={"enum": sorted(IMAGE_MODELS)},
    )


class GenerateImageArgs(ImageModelArgs, SizeArgs, VariationArgs, GptImageArgs, LoraArgs):
    prompt: str = Field(
        min_length=1,
        max_length=MAX_PROMPT,
        description="What the picture shows; {a|b} gives variation i the i-th option.",
    )
    negativePrompt: str | None = Field(None, description="What to keep out of the picture.")
    sourceImageIndex: ImageIndex | None = Field(
        None, description="Start from this image (img2img); -1 is the first upload."
    )
    starting_image_strength: float | None = Field(
        None,
        ge=0,
        le=1,
        description="img2img: how strongly the source guides the result (0-1); setting it "
        "alone starts from the latest image.",
    )
    guidance: float | None = Field(None, ge=0, le=30, description="Prompt adherence, if supported.")

    @property
    def img2img(self) -> bool:
        return self.sourceImageIndex is not None or self.starting_image_strength is not None


class EditImageArgs(ImageModelArgs, SizeArgs, VariationArgs, GptImageArgs, LoraArgs):
    prompt: str = Field(
        min_length=1, max_length=MAX_PROMPT, description="The change to make, in words."
    )
    sourceImageIndex: ImageIndex | None = Field(
        None, description="The image to edit: 0-based result, or -1 for the first upload."
    )
    referenceImageIndices: list[ImageIndex] | None = Field(
        None,
        max_length=16,
        description="Further context images; omitted, the other uploaded images are used.",
    )
    personaName: str | None = Field(
        None,
        min_length=1,
        description="Use only the image labelled with this person's name as context.",
    )
    mask_image_url: str | None = Field(
        None,
        min_length=1,
        description="PNG with alpha (URL or data URI): transparent pixels may change, opaque "
        "pixels keep the source.",
    )
    strength: float = Field(0.6, ge=0, le=1, description="How strongly the edit applies.")
    negativePrompt: str | None = Field(None, description="What to keep out of the picture.")


class RestyleArgs(ImageModelArgs, ReframeArgs, VariationArgs, OutputArgs):
    """apply_style and refine_result."""

    prompt: str = Field(
        min_length=1, max_length=MAX_PROMPT, description="The look or change to apply."
    )
    sourceImageIndex: ImageIndex | None = Field(
        None, description="The image to work on; default the latest result."
    )
    strength: float = Field(0.65, ge=0, le=1, description="How strongly the style applies.")


class RestorePhotoArgs(ImageModelArgs, ReframeArgs, VariationArgs, OutputArgs):
    prompt: str | None = Field(None, max_length=MAX_PROMPT, description="What to repair, in words.")
    sourceImageIndex: ImageIndex | None = Field(
        None, description="The photo; default the first upload."
    )
    quality: Literal["fast", "hq"] | None = Field(
        None, description="hq denoises harder and sharpens twice; only when asked for."
    )


class ChangeAngleArgs(ImageModelArgs, AspectArgs, OutputArgs):
    description: str | None = Field(
        None,
        max_length=500,
        description="Camera phrase: azimuth (front view, front-right quarter view, right side "
        "view, back view, ...), elevation (low-angle, eye-level, elevated, high-angle shot) and "
        "distance (close-up, medium shot, wide shot).",
    )
    prompt: str | None = Field(
        None,
        max_length=2000,
        description="Older spelling, read as description when that is absent.",
    )
    sourceImageIndex: ImageIndex | None = Field(
        None, description="The image to re-frame; default the latest result, -1 the upload."
    )
    loraStrength: float = Field(
        0.9, ge=0.1, le=1.0, description="How far the view moves (lower keeps more of the source)."
    )
    horizontalAngle: float | None = Field(
        None, ge=-180, le=180, description="Degrees to turn (+ right); overrides the phrase."
    )
    verticalAngle: float | None = Field(
        None, ge=-1, le=1, description="Tilt, -1 from below to +1 from above; overrides the phrase."
    )


class UpscaleImageArgs(ImageToolArgs):
    sourceImageIndex: ImageIndex | None = Field(None, description="The image to enlarge.")
    scale: Literal[2, 3, 4] = Field(2, description="Edge factor; not used with targetLongestEdge.")
    targetLongestEdge: int | None = Field(
        None, ge=512, le=15360, description="Exact longest edge in px (wins over scale)."
    )
