"""Text the user reads or sings: compose_script (scenes of a script), compose_lyrics and
compose_instrumental (a song's sections, timed in code, with suggested music parameters in
range); the model supplies only the wording.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field

from sogni_intelligence.tools.base import (
    ToolArgs,
    ToolContext,
    ToolOutput,
)
from sogni_intelligence.tools.composing import (
    ALL_MEDIA_MODELS,
    DEFAULT_SECONDS_PER_SCENE,
    KEYSCALES,
    MAX_TEXT,
    ask_text_model,
    check_model,
    clean_text,
    clock_time,
    even_share,
    joined_lines,
    model_id_schema,
    object_schema,
    string_schema,
    titled_scenes_schema,
)


class ComposeScriptArgs(ToolArgs):
    brief: str = Field(min_length=1, max_length=MAX_TEXT, description="What the piece is about.")
    script_type: (
        Literal[
            "video_prompt",
            "screenplay",
            "storyboard",
            "ad_script",
            "trailer",
            "social_short",
            "talking_head",
            "campaign",
            "revision",
        ]
        | None
    ) = Field(None, description="The kind of script to write.")
    destination_model: Annotated[str, model_id_schema(ALL_MEDIA_MODELS)] | None = Field(
        None, description="Model the script is meant for."
    )
    destination_tool: str | None = Field(None, description="Tool the script is meant for.")
    duration_seconds: float | None = Field(None, ge=1, le=300, description="Total running time.")
    scene_count: int | None = Field(
        None, ge=1, le=12, description="Split it into this many scenes."
    )
    aspect_ratio: str | None = Field(None, max_length=16, description="Framing, e.g. 9:16.")
    platform: str | None = Field(None, max_length=100, description="Where it will be shown.")
    style: str | None = Field(None, max_length=1000, description="Tone and look.")
    first_frame_description: str | None = Field(
        None, max_length=2000, description="What the opening frame shows."
    )
    first_frame_data_url: str | None = Field(None, description="Opening frame image (not read).")
    last_frame_data_url: str | None = Field(None, description="Closing frame image (not read).")
    return_format: Literal["script", "markdown", "json"] = Field(
        "script", description="Plain text, Markdown, or a JSON string."
    )


def _script_text(title: str, body: str | None, scenes: list[dict[str, Any]], fmt: str) -> str:
    """The script in the requested format, built from the title and either a body or scenes."""
    if fmt == "json":
        return json.dumps(
            {"title": title, "scenes": scenes} if scenes else {"title": title, "script": body},
            ensure_ascii=False,
        )
    heading = f"# {title}" if fmt == "markdown" else title
    if not scenes:
        return f"{heading}\n\n{body}"
    blocks = []
    for scene in scenes:
        span = f"{clock_time(scene['start_seconds'])}-{clock_time(scene['end_seconds'])}"
        if fmt == "markdown":
            blocks.append(
                f"## Scene {scene['scene']} ({span})\n**Visual:** {scene['visual']}\n"
                f"**Narration:** {scene['narration']}"
            )
        else:
            blocks.append(
                f"Scene {scene['scene']} ({span})\nVisual: {scene['visual']}\n"
                f"Narration: {scene['narration']}"
            )
    return heading + "\n\n" + "\n\n".join(blocks)


async def compose_script(args: ComposeScriptArgs, ctx: ToolContext) -> ToolOutput:
    if args.destination_model is not None:
        check_model(ALL_MEDIA_MODELS, args.destination_model, "destination", "destination_model")
    kind = (args.script_type or "video script").replace("_", " ")
    context = joined_lines(
        f"Brief: {args.brief}",
        f"Style: {args.style}" if args.style else None,
        f"Platform: {args.platform}" if args.platform else None,
        f"Aspect ratio: {args.aspect_ratio}" if args.aspect_ratio else None,
        f"Length: {args.duration_seconds:g} seconds" if args.duration_seconds else None,
        f"Opening frame: {args.first_frame_description}" if args.first_frame_description else None,
        f"Target model: {args.destination_model}" if args.destination_model else None,
    )
    warnings = []
    if args.first_frame_data_url or args.last_frame_data_url:
        warnings.append("frame images are not looked at; describe them in first_frame_description")
    fallback_title = " ".join(args.brief.split())[:80]
    scenes: list[dict[str, Any]] = []
    body = None
    if args.scene_count:
        count = args.scene_count
        schema = titled_scenes_schema(
            count,
            {
                "visual": string_schema(even_share(1200, count, 240)),
                "narration": string_schema(even_share(600, count, 160)),
            },
        )
        instruction = (
            f"Write a {kind} in {count} scenes. For each scene give what we see (visual) and "
            f"what is said (narration).\n{context}"
        )
        answer = await ask_text_model(ctx, instruction, schema)
        total = args.duration_seconds or DEFAULT_SECONDS_PER_SCENE * count
        each = total / count
        for i, scene in enumerate(answer["scenes"]):
            scenes.append(
                {
                    "scene": i + 1,
                    "start_seconds": round(i * each, 2),
                    "end_seconds": round((i + 1) * each, 2),
                    "duration_seconds": round(each, 2),
                    "visual": clean_text(scene["visual"], args.brief),
                    "narration": clean_text(scene["narration"], ""),
                }
            )
    else:
        schema = object_schema({"title": string_schema(80), "script": string_schema(1200)})
        answer = await ask_text_model(ctx, f"Write a {kind}.\n{context}", schema)
        body = clean_text(answer["script"], args.brief, one_line=False)
    title = clean_text(answer["title"], fallback_title)
    result: dict[str, Any] = {
        "script": _script_text(title, body, scenes, args.return_format),
        "title": title,
        "script_type": args.script_type,
        "return_format": args.return_format,
    }
    if scenes:
        result["scenes"] = scenes
    return ToolOutput(assets=[], warnings=warnings, extra=result)


# --- music: compose_lyrics and compose_instrumental ------------------------------------------


def _music_schema() -> dict[str, Any]:
    return {
        "music_prompt": string_schema(160),
        "bpm": {"type": "integer", "minimum": 60, "maximum": 180},
        "keyscale": {"enum": list(KEYSCALES)},
        "timesig": {"enum": [3, 4]},
    }


def _suggested(
    answer: dict[str, Any], duration: float, music_prompt: str | None, fallback: str
) -> dict[str, Any]:
    """generate_music arguments: the caller's music prompt wins over the model's."""
    return {
        "duration": duration,
        "bpm": answer["bpm"],
        "keyscale": answer["keyscale"],
        "timesig": answer["timesig"],
        "music_prompt": music_prompt or clean_text(answer["music_prompt"], fallback),
    }


class ComposeLyricsArgs(ToolArgs):
    prompt: str = Field(min_length=1, max_length=MAX_TEXT, description="What the song is about.")
    language: str | None = Field(None, max_length=50, description="Language of the lyrics.")
    music_prompt: str | None = Field(
        None, max_length=1000, description="Genre, mood and instruments, if already decided."
    )
    duration_seconds: float | None = Field(None, ge=10, le=600, description="Song length.")


def _song_form(duration: float) -> tuple[list[str], list[str]]:
    """(sections the model writes, the order they are sung in) for a song of `duration`."""
    if duration < 90:
        return ["verse_1", "chorus"], ["verse_1", "chorus"]
    if duration < 180:
        return ["verse_1", "chorus", "verse_2"], ["verse_1", "chorus", "verse_2", "chorus"]
    return (
        ["verse_1", "chorus", "verse_2", "bridge"],
        ["verse_1", "chorus", "verse_2", "chorus", "bridge", "chorus"],
    )


async def compose_lyrics(args: ComposeLyricsArgs, ctx: ToolContext) -> ToolOutput:
    duration = args.duration_seconds or 60.0
    written, sung = _song_form(duration)
    properties: dict[str, Any] = {"title": string_schema(80)}
    properties.update({name: string_schema(240) for name in written})
    properties.update(_music_schema())
    language = f" in {args.language}" if args.language else ""
    instruction = joined_lines(
        f"Write song lyrics{language} about: {args.prompt}",
        f"Give {', '.join(n.replace('_', ' ') for n in written)} as a few short lines each, "
        "then a music description, tempo (bpm), key and beats per bar.",
        f"Music: {args.music_prompt}" if args.music_prompt else None,
    )
    answer = await ask_text_model(ctx, instruction, object_schema(properties))
    texts = {name: clean_text(answer[name], args.prompt, one_line=False) for name in written}
    labels = {"verse_1": "Verse 1", "verse_2": "Verse 2", "chorus": "Chorus", "bridge": "Bridge"}
    if "verse_2" not in written:
        labels["verse_1"] = "Verse"
    lyrics = "\n\n".join(f"[{labels[name]}]\n{texts[name]}" for name in sung)
    result: dict[str, Any] = {
        "lyrics": lyrics,
        "title": clean_text(answer["title"], " ".join(args.prompt.split())[:80]),
        "sections": [labels[name] for name in sung],
        "suggested_params": _suggested(answer, duration, args.music_prompt, args.prompt),
    }
    if args.language:
        result["language"] = args.language
    return ToolOutput(assets=[], extra=result)


class ComposeInstrumentalArgs(ToolArgs):
    prompt: str = Field(min_length=1, max_length=MAX_TEXT, description="The mood or scene.")
    music_prompt: str | None = Field(
        None, max_length=1000, description="Genre, mood and instruments, if already decided."
    )
    duration_seconds: float | None = Field(None, ge=10, le=600, description="Piece length.")


def _instrumental_form(duration: float) -> list[tuple[str, float]]:
    """Section names with their share of the running time."""
    if duration < 45:
        return [("Intro", 1), ("Main theme", 3), ("Outro", 1)]
    if duration < 120:
        return [("Intro", 1), ("Theme A", 2), ("Theme B", 2), ("Outro", 1)]
    return [
        ("Intro", 1),
        ("Theme A", 2),
        ("Theme B", 2),
        ("Bridge", 1.5),
        ("Theme A reprise", 2),
        ("Outro", 1),
    ]


def _section_times(duration: float, shares: list[float], bar_seconds: float) -> list[float]:
    """Section boundaries in seconds, on bar lines where the piece is long enough for that."""
    total = sum(shares)
    bounds, elapsed = [0.0], 0.0
    for share in shares[:-1]:
        elapsed += duration * share / total
        on_bar = round(elapsed / bar_seconds) * bar_seconds
        bounds.append(on_bar if bounds[-1] < on_bar < duration else elapsed)
    bounds.append(duration)
    return [round(b, 2) for b in bounds]


async def compose_instrumental(args: ComposeInstrumentalArgs, ctx: ToolContext) -> ToolOutput:
    duration = args.duration_seconds or 60.0
    form = _instrumental_form(duration)
    properties: dict[str, Any] = {
        "title": string_schema(80),
        "sections": {
            "type": "array",
            "minItems": len(form),
            "maxItems": len(form),
            "items": string_schema(140),
        },
    }
    properties.update(_music_schema())
    instruction = joined_lines(
        f"Plan an instrumental piece about: {args.prompt}",
        f"Describe in one line each what happens in these {len(form)} sections: "
        + ", ".join(name for name, _ in form)
        + ". Then give a music description, tempo (bpm), key and beats per bar.",
        f"Music: {args.music_prompt}" if args.music_prompt else None,
    )
    answer = await ask_text_model(ctx, instruction, object_schema(properties))
    bar_seconds = answer["timesig"] * 60 / answer["bpm"]
    bounds = _section_times(duration, [share for _, share in form], bar_seconds)
    sections = [
        {
            "name": name,
            "start_seconds": bounds[i],
            "end_seconds": bounds[i + 1],
            "description": clean_text(answer["sections"][i], name),
        }
        for i, (name, _) in enumerate(form)
    ]
    structure = "\n".join(
        f"{clock_time(s['start_seconds'])}-{clock_time(s['end_seconds'])} "
        f"{s['name']}: {s['description']}"
        for s in sections
    )
    result = {
        "structure": structure,
        "title": clean_text(answer["title"], " ".join(args.prompt.split())[:80]),
        "sections": sections,
        "suggested_params": _suggested(answer, duration, args.music_prompt, args.prompt),
    }
    return ToolOutput(assets=[], extra=result)
