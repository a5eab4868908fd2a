"""`add_subtitles`: burn cues ({startSeconds, endSeconds, text}) or an SRT/WebVTT document into a
video. Plain ffmpeg with libass; see `media/subtitles.py`.

There is no speech recogniser on this server: `auto_transcribe` is accepted and named in the
warnings when cues come with it, and without cues the call answers USER_INPUT_INCOMPLETE (as the
hosted tool does), so the model asks the user for the lines.
"""

from __future__ import annotations

import shutil

from pydantic import AliasChoices, Field, model_validator

from sogni_intelligence.media import subtitles
from sogni_intelligence.media.srt import Cue, parse_srt, plain_cue_text
from sogni_intelligence.media.video.probe import inspect
from sogni_intelligence.tools.base import (
    Tool,
    ToolArgs,
    ToolContext,
    ToolError,
    ToolOutput,
    tool_family,
)
from sogni_intelligence.tools.keyframes import FFMPEG, store_video
from sogni_intelligence.tools.media_context import VideoIndex
from sogni_intelligence.tools.styling import TextLook

#: How long a cue without a length of its own is shown (a typical subtitle line).
UNTIMED_CUE_S = 2.0


class SubtitleCue(ToolArgs):
    startSeconds: float = Field(
        ge=0, validation_alias=AliasChoices("startSeconds", "start"), description="Seconds."
    )
    endSeconds: float = Field(
        ge=0, validation_alias=AliasChoices("endSeconds", "end"), description="Seconds."
    )
    text: str = Field(min_length=1, max_length=1000, description="Shown as written.")


class SubtitleStyle(TextLook):
    position: subtitles.SubtitlePosition = Field("bottom", description="Where the lines sit.")


class AddSubtitlesArgs(ToolArgs):
    sourceVideoIndex: VideoIndex | None = Field(
        None, description="The video; default (or -1) the latest video, else the first upload."
    )
    cues: list[SubtitleCue] | None = Field(
        None, max_length=2000, description="Short timed lines; give cues or srt."
    )
    srt: str | None = Field(
        None, min_length=1, max_length=500_000, description="An SRT or WebVTT document."
    )
    auto_transcribe: bool | None = Field(
        None, description="Speech-to-text is not available here; supply cues or srt."
    )
    style: SubtitleStyle | None = None

    @model_validator(mode="after")
    def _one_source(self) -> AddSubtitlesArgs:
        if self.cues and self.srt is not None:
            raise ValueError("give cues or srt, not both")
        return self


def _cues(args: AddSubtitlesArgs) -> tuple[list[Cue], list[str]]:
    """The cues to burn, and a warning for each that had to be given a length."""
    if args.srt is not None:
        try:
            return parse_srt(args.srt), []
        except ValueError as exc:
            raise ToolError("PARAMETER_INVALID", f"srt: {exc}") from exc
    if args.cues:
        cues, warnings = [], []
        for c in sorted(args.cues, key=lambda c: c.startSeconds):
            end = c.endSeconds
            # A schema cannot tie the end to the start, so a call grammar lets a model write
            # a cue without a length: it gets the usual length of a subtitle line.
            if end <= c.startSeconds:
                end = c.startSeconds + UNTIMED_CUE_S
                warnings.append(
                    f"the cue at {c.startSeconds:g} s ended at or before its start; it is "
                    f"shown for {UNTIMED_CUE_S:g} s"
                )
            cues.append(Cue(c.startSeconds, end, plain_cue_text(c.text)))
        return cues, warnings
    reason = (
        "speech-to-text is not available on this server"
        if args.auto_transcribe
        else "no subtitle lines were given"
    )
    raise ToolError(
        "USER_INPUT_INCOMPLETE",
        f"{reason}: ask the user for the lines and their timing, then pass them as cues "
        "({startSeconds, endSeconds, text}) or srt",
    )


async def add_subtitles(args: AddSubtitlesArgs, ctx: ToolContext) -> ToolOutput:
    cues, warnings = _cues(args)
    source = ctx.media.latest_video_or_first_upload(args.sourceVideoIndex, "sourceVideoIndex")
    path = await ctx.store.local_path(source)
    duration = (await inspect(path)).duration
    if args.auto_transcribe:
        warnings.append("auto_transcribe ignored: no speech recogniser here; the given cues ran")
    if all(c.start >= duration for c in cues):
        warnings.append("every cue starts after the video ends; nothing will show")
    style = args.style or SubtitleStyle()
    scratch = ctx.store.scratch_dir()
    try:
        ctx.progress(0.2, "rendering subtitles")
        out = scratch / "subtitled.mp4"
        await subtitles.burn_subtitles(
            path,
            out,
            cues,
            scratch,
            size=style.font_share(),
            font_px=style.font_px(),
            color=style.color or "#FFFFFF",
            outline=style.outlineColor or "#000000",
            position=style.position,
        )
        ctx.progress(0.9, "storing")
        meta = {
            "operation": "subtitles",
            "source": source.id,
            "cues": len(cues),
            "style": style.model_dump(exclude_none=True),
        }
        record = await store_video(ctx, out, "add_subtitles", FFMPEG, meta)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ToolOutput(
        [record], model=FFMPEG, backend=FFMPEG, warnings=warnings, extra={"cueCount": len(cues)}
    )


TOOLS = tool_family(
    "media",
    "video",
    [
        Tool(
            "add_subtitles",
            "Burn subtitles into a video from cues ({startSeconds, endSeconds, text}) or "
            "SRT/WebVTT text, each line shown only in its window; font size (% of the height), "
            "colours and bottom/top/center position. No speech-to-text here.",
            AddSubtitlesArgs,
            add_subtitles,
            cost=lambda args: 1.0,
            needs=frozenset({"video"}),
        ),
    ],
)
