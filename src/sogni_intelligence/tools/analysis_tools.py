"""Analysis tools: extract_metadata, analyze_image and analyze_video.

They make no media. With a vision-capable LLM in `ctx.services["vision_llm"]` (an async
callable taking a prompt and a list of image data URIs and returning text) the image and video
tools ask it; without one they answer from measured statistics and say that plainly.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from typing import Any, Literal

from pydantic import Field, field_validator

from sogni_intelligence.media.analysis.descriptions import (
    describe_comparison,
    describe_image,
    describe_video,
)
from sogni_intelligence.media.analysis.images import compare_images, image_stats
from sogni_intelligence.media.analysis.metadata import image_metadata, media_metadata
from sogni_intelligence.media.analysis.video_stats import data_uri, frames_for_vision, video_stats
from sogni_intelligence.media.ffmpeg import MediaProcessError
from sogni_intelligence.media.sniff import MediaKind
from sogni_intelligence.media.store import AssetRecord
from sogni_intelligence.tools.base import (
    Tool,
    ToolArgs,
    ToolContext,
    ToolError,
    ToolOutput,
    VisionLLM,
    tool_family,
)
from sogni_intelligence.tools.media_context import (
    AudioIndex,
    ImageIndex,
    SessionMediaKind,
    VideoIndex,
)

log = logging.getLogger(__name__)

VIDEO_FRAMES_FOR_VISION = 6
COMPUTED_BACKEND = "computed-statistics"
VISION_BACKEND = "vision-llm"


def _nonempty(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


async def _ask(vision: VisionLLM, prompt: str, images: list[str]) -> str | None:
    """The vision model's answer, or None (and a log line) when it fails."""
    try:
        answer = await vision(prompt, images)
    except asyncio.CancelledError:
        raise
    except Exception:  # any failure of an outside model falls back to the computed answer
        log.warning("vision model failed; answering from computed statistics", exc_info=True)
        return None
    text = str(answer or "").strip()
    return text or None


def _source(record: AssetRecord, index: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"asset_id": record.id, "type": record.kind, "mime_type": record.mime}
    if index is not None:
        out["index"] = index
    return out


# --------------------------------------------------------------------------------------------
# extract_metadata


class ExtractMetadataArgs(ToolArgs):
    rarely_needed = frozenset({"fileIndex"})

    mediaType: SessionMediaKind | None = Field(
        None, description="Which kind of media to inspect; inferred from the index given."
    )
    sourceImageIndex: ImageIndex | None = Field(
        None, description="Image index (>=0 generated, <0 uploaded, -1 = first upload)."
    )
    sourceVideoIndex: VideoIndex | None = Field(None, description="Video index, same convention.")
    audioSourceIndex: AudioIndex | None = Field(None, description="Audio index, same convention.")
    fileIndex: int | None = Field(
        None, ge=0, description="Legacy: 0-based index into the uploads of the media type."
    )


def _pick_for_metadata(args: ExtractMetadataArgs, ctx: ToolContext) -> AssetRecord:
    indices: dict[MediaKind, tuple[int | None, str]] = {
        "image": (args.sourceImageIndex, "sourceImageIndex"),
        "video": (args.sourceVideoIndex, "sourceVideoIndex"),
        "audio": (args.audioSourceIndex, "audioSourceIndex"),
    }
    kind: MediaKind | None = args.mediaType
    if kind is None:
        given = [k for k, (value, _) in indices.items() if value is not None]
        if len(given) > 1:
            raise ToolError(
                "PARAMETER_INVALID", "give one source index, or name the mediaType to inspect"
            )
        kind = given[0] if given else None
    if args.fileIndex is not None and indices[kind or "image"][0] is None:
        if kind is not None:
            return ctx.media.resolve_upload(kind, args.fileIndex, "fileIndex")
        for candidate in ("image", "video", "audio"):
            if args.fileIndex < len(ctx.media.uploads[candidate]):
                return ctx.media.uploads[candidate][args.fileIndex]
        raise ToolError("ASSET_NOT_FOUND", f"fileIndex={args.fileIndex} points at no upload")
    if kind is None:
        for candidate in ("image", "video", "audio"):
            if ctx.media.generated[candidate] or ctx.media.uploads[candidate]:
                kind = candidate
                break
        else:
            raise ToolError(
                "ASSET_NOT_FOUND", "there is no media to inspect: generate or upload some first"
            )
    value, name = indices[kind]
    return ctx.media.resolve(kind, value, name)


def _metadata_answer(record: AssetRecord, meta: dict[str, Any]) -> str:
    if record.kind == "image":
        exif = meta.get("exif") or {}
        exif_words = f"{len(exif)} EXIF tags" if exif else "no EXIF data"
        return (
            f"{meta.get('format')} image, {meta['width']}×{meta['height']} px, mode "
            f"{meta['mode']}, {meta['file_size_bytes']} bytes, {exif_words}."
        )
    words = [f"{record.kind} file ({meta.get('container')})"]
    if meta.get("duration_seconds") is not None:
        words.append(f"{meta['duration_seconds']:.2f} s")
    if meta.get("width"):
        fps = f" at {meta['fps']:.3g} fps" if meta.get("fps") else ""
        words.append(f"video {meta.get('video_codec')} {meta['width']}×{meta['height']}{fps}")
    if meta.get("audio_codec"):
        words.append(
            f"audio {meta['audio_codec']} {meta.get('sample_rate')} Hz, "
            f"{meta.get('channels')} channel(s)"
        )
    if meta.get("bit_rate"):
        words.append(f"{round(meta['bit_rate'] / 1000)} kb/s")
    return ", ".join(words) + "."


async def extract_metadata(args: ExtractMetadataArgs, ctx: ToolContext) -> ToolOutput:
    record = _pick_for_metadata(args, ctx)
    path = await ctx.store.local_path(record)
    if record.kind == "image":
        meta = await asyncio.to_thread(image_metadata, path)
    else:
        meta = await media_metadata(path)
    meta["mime_type"] = record.mime
    return ToolOutput(
        assets=[],
        backend="pillow" if record.kind == "image" else "ffprobe",
        extra={
            "media_type": record.kind,
            "source": _source(record, None),
            "metadata": meta,
            "answer": _metadata_answer(record, meta),
        },
    )


# --------------------------------------------------------------------------------------------
# analyze_image

IMAGE_TASKS = {
    "describe": "Describe the image: subject, setting, composition, colours and mood.",
    "ocr": "Transcribe every piece of legible text in the image exactly, in reading order.",
    "objects": "List the objects visible in the image, with rough positions and counts.",
    "document": "Read the document: say what kind it is, give its structure and its text.",
    "compare": "Compare the two images: what they share and every notable difference.",
    "general": "Answer the question about the image.",
}


class AnalyzeImageArgs(ToolArgs):
    query: str = Field(description="What to find out about the image.", max_length=4096)
    analysisType: Literal["describe", "ocr", "objects", "document", "compare", "general"] = Field(
        "general", description="The kind of analysis."
    )
    sourceImageIndex: ImageIndex | None = Field(
        None, description="Image index (>=0 generated, <0 uploaded); default latest/first."
    )
    compareImageIndex: ImageIndex | None = Field(
        None, description="Second image for a comparison (same index convention)."
    )
    detailed: bool = Field(False, description="Ask for a longer, more detailed answer.")

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        return _nonempty(value)


def _other_image(ctx: ToolContext, source: AssetRecord) -> AssetRecord:
    """The image to compare with when none was named: the newest other result, else upload."""
    candidates = [*reversed(ctx.media.generated["image"]), *ctx.media.uploads["image"]]
    for record in candidates:
        if record.id != source.id:
            return record
    raise ToolError(
        "ASSET_NOT_FOUND", "a comparison needs two images: give compareImageIndex or add one"
    )


def _vision_prompt(task: str, query: str, detailed: bool, facts: str) -> str:
    length = "Answer in detail." if detailed else "Answer concisely."
    return f"{task} {length}\nQuestion: {query}\nMeasured facts: {facts}"


async def analyze_image(args: AnalyzeImageArgs, ctx: ToolContext) -> ToolOutput:
    source = ctx.media.resolve("image", args.sourceImageIndex, "sourceImageIndex")
    comparing = args.analysisType == "compare" or args.compareImageIndex is not None
    other = None
    if comparing:
        other = (
            ctx.media.resolve("image", args.compareImageIndex, "compareImageIndex")
            if args.compareImageIndex is not None
            else _other_image(ctx, source)
        )
    path = await ctx.store.local_path(source)
    ctx.progress(0.1, "measuring the image")
    stats = await asyncio.to_thread(image_stats, path)
    result: dict[str, Any] = {"type": args.analysisType, "image": stats}
    if other is not None:
        other_path = await ctx.store.local_path(other)
        result["compare_image"] = await asyncio.to_thread(image_stats, other_path)
        result["comparison"] = await asyncio.to_thread(compare_images, path, other_path)
    vision = ctx.services.vision_llm
    answer = None
    if vision is not None:
        ctx.progress(0.4, "asking the vision model")
        images = [await asyncio.to_thread(data_uri, path)]
        if other is not None:
            images.append(await asyncio.to_thread(data_uri, await ctx.store.local_path(other)))
        task = IMAGE_TASKS["compare" if other is not None else args.analysisType]
        facts = f"{stats['width']}×{stats['height']} px"
        answer = await _ask(vision, _vision_prompt(task, args.query, args.detailed, facts), images)
    warnings: list[str] = []
    computed = answer is None
    if computed:
        if vision is not None:
            warnings.append("The vision model failed; the answer is computed from pixel data.")
        if other is not None:
            answer = describe_comparison(result["comparison"])
        else:
            answer = describe_image(stats, args.analysisType, args.detailed)
    extra: dict[str, Any] = {
        "analysis": result,
        "answer": answer,
        "computed": computed,
        "source": _source(source, args.sourceImageIndex),
    }
    if other is not None:
        extra["compare_source"] = _source(other, args.compareImageIndex)
    return ToolOutput(
        assets=[],
        backend=COMPUTED_BACKEND if computed else VISION_BACKEND,
        warnings=warnings,
        extra=extra,
    )


# --------------------------------------------------------------------------------------------
# analyze_video

VIDEO_TASKS = {
    "summary": "Summarize what happens in the video, judging from these frames.",
    "timeline": "Give a timeline of the video, using the time of each frame.",
    "scene": "Describe each scene of the video: setting, subjects and how it changes.",
    "action": "Describe the actions and movements in the video.",
    "ocr": "Transcribe all legible text that appears in the frames, with times.",
    "general": "Answer the question about the video.",
}


class AnalyzeVideoArgs(ToolArgs):
    query: str = Field(description="What to find out about the video.", max_length=4096)
    analysisType: Literal["summary", "timeline", "scene", "action", "ocr", "general"] = Field(
        "general", description="The kind of analysis."
    )
    sourceVideoIndex: VideoIndex | None = Field(
        None, description="Video index (>=0 generated, <0 uploaded); default latest/first."
    )
    detailed: bool = Field(False, description="Ask for a longer, more detailed answer.")

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        return _nonempty(value)


async def analyze_video(args: AnalyzeVideoArgs, ctx: ToolContext) -> ToolOutput:
    source = ctx.media.resolve("video", args.sourceVideoIndex, "sourceVideoIndex")
    path = await ctx.store.local_path(source)
    scratch = ctx.store.scratch_dir()
    try:
        ctx.progress(0.1, "sampling frames")
        try:
            stats = await video_stats(path, scratch)
        except (ValueError, MediaProcessError) as exc:
            raise ToolError("UNKNOWN_ERROR", f"the video could not be analysed: {exc}") from exc
        vision = ctx.services.vision_llm
        answer = None
        if vision is not None:
            ctx.progress(0.5, "asking the vision model")
            frames = await frames_for_vision(
                path, scratch, stats["duration_seconds"], VIDEO_FRAMES_FOR_VISION
            )
            times = ", ".join(f"frame {i + 1} at {at:.1f} s" for i, (at, _) in enumerate(frames))
            images = [await asyncio.to_thread(data_uri, p, 768) for _, p in frames]
            facts = (
                f"{stats['duration_seconds']:.1f} s, {stats['width']}×{stats['height']}; "
                f"frames in order: {times}; cuts measured at "
                f"{stats['cut_times_seconds'] or 'none'} s"
            )
            prompt = _vision_prompt(
                VIDEO_TASKS[args.analysisType], args.query, args.detailed, facts
            )
            if images:
                answer = await _ask(vision, prompt, images)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    warnings: list[str] = []
    computed = answer is None
    if computed:
        if vision is not None:
            warnings.append("The vision model failed; the answer is computed from frame data.")
        answer = describe_video(stats, args.analysisType, args.detailed)
    return ToolOutput(
        assets=[],
        backend=COMPUTED_BACKEND if computed else VISION_BACKEND,
        warnings=warnings,
        extra={
            "analysis": {"type": args.analysisType, "video": stats},
            "answer": answer,
            "computed": computed,
            "source": _source(source, args.sourceVideoIndex),
        },
    )


def _image_cost(args: AnalyzeImageArgs) -> float:
    return 0.4 if args.analysisType == "compare" or args.compareImageIndex is not None else 0.2


TOOLS = tool_family(
    "media",
    "analysis",
    [
        Tool(
            name="extract_metadata",
            description=(
                "Report the technical metadata of an image, video or audio: format, dimensions, "
                "EXIF for images; duration, frame rate, codecs, sample rate, channels and bit rate "
                "for video and audio."
            ),
            args=ExtractMetadataArgs,
            run=extract_metadata,
            cost=lambda args: 0.05,
            needs_any=frozenset({"image", "video", "audio"}),
        ),
        Tool(
            name="analyze_image",
            description=(
                "Answer a question about an image, describe it, read it or compare it with a "
                "second image. Without a vision model the answer is computed from the pixels "
                "(size, colours, brightness, contrast, sharpness, differences) and says so."
            ),
            args=AnalyzeImageArgs,
            run=analyze_image,
            cost=_image_cost,
            needs=frozenset({"image"}),
        ),
        Tool(
            name="analyze_video",
            description=(
                "Answer a question about a video from frames sampled across it: summary, timeline, "
                "scenes or actions. Without a vision model it reports measured facts: duration, "
                "frame rate, size, scene cuts with their times and colours, motion."
            ),
            args=AnalyzeVideoArgs,
            run=analyze_video,
            cost=lambda args: 0.5,
            needs=frozenset({"video"}),
        ),
    ],
)
