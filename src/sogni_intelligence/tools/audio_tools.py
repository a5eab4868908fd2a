"""Audio tools: generate_music (MIDI composition + FluidSynth) and generate_speech (the neural
hibari-tts voice for English, espeak-ng for other languages).

Both make real, decodable files on the CPU. Neither can sing or clone a voice: lyrics are kept
as metadata next to an instrumental, and the clone/design speech models are refused.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
from typing import Annotated, Literal

from pydantic import Field, WithJsonSchema, field_validator

from sogni_intelligence.media import music, speech
from sogni_intelligence.media.models import (
    DEFAULT_MUSIC_MODEL,
    MUSIC_MODELS,
    SPEECH_MODELS,
    resolve_model,
)
from sogni_intelligence.media.music.neural import MusicModel
from sogni_intelligence.media.progress import spanning
from sogni_intelligence.media.store import AssetRecord
from sogni_intelligence.tools.base import (
    Tool,
    ToolArgs,
    ToolContext,
    ToolError,
    ToolOutput,
    tool_family,
)
from sogni_intelligence.tools.media_context import AudioIndex

AudioFormat = Literal["wav", "mp3", "flac"]
SEED_LIMIT = 2**32
KEYSCALE_SCHEMA = {"type": "string", "pattern": r"^[A-G](#|b)? (major|minor)$"}


def _random_seed() -> int:
    return secrets.randbelow(SEED_LIMIT)


def _strip_required(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


# --------------------------------------------------------------------------------------------
# generate_music


class GenerateMusicArgs(ToolArgs):
    prompt: str = Field(
        description="What the music should sound like: genre, mood, instruments, tempo words "
        "(e.g. 'calm piano for studying', 'energetic rock with drums').",
        max_length=4096,
    )
    model: str = Field(
        DEFAULT_MUSIC_MODEL,
        description="Music model id; the built-in MIDI composer serves every id but those of "
        "the operator's local music model.",
    )
    duration: float = Field(60, ge=10, le=600, description="Length in seconds.")
    bpm: int | None = Field(None, ge=30, le=300, description="Tempo in beats per minute.")
    # The schema offers (and a grammar holds a model to) the plain form; the validator below
    # also takes the shorthands people write ('Am', 'Bb', 'F sharp minor').
    keyscale: Annotated[str, WithJsonSchema(KEYSCALE_SCHEMA)] | None = Field(
        None, description="Key and mode, e.g. 'C major' or 'F# minor'."
    )
    timesig: Literal[2, 3, 4, 6] | None = Field(
        None, description="Beats per bar: 2, 3, 4 or 6 (6 means 6/8); '3/4' is accepted too."
    )
    lyrics: str | None = Field(
        None,
        max_length=10000,
        description="Song lyrics. This server cannot sing: they are stored with an instrumental.",
    )
    numberOfVariations: int = Field(1, ge=1, le=16, description="How many distinct pieces.")
    outputFormat: AudioFormat = Field("mp3", description="Audio container/codec.")
    seed: int | None = Field(
        None,
        ge=-1,
        lt=SEED_LIMIT,
        description="Seed for a repeatable piece; -1 or omitted = random.",
    )

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str) -> str:
        return _strip_required(value)

    @field_validator("keyscale")
    @classmethod
    def _keyscale(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        music.parse_keyscale(value)  # raises ValueError with a readable message
        return value.strip()

    @field_validator("timesig", mode="before")
    @classmethod
    def _timesig(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text in ("6/8", "6"):
                return 6
            top, _, bottom = text.partition("/")
            if top.isdigit() and bottom in ("", "4"):
                value = int(top)
            else:
                raise ValueError("timesig must be 2, 3, 4 or 6 (or 2/4, 3/4, 4/4, 6/8)")
        return value


def _music_cost(args: GenerateMusicArgs) -> float:
    return args.numberOfVariations * (0.5 + args.duration / 60.0)


def _music_warnings(args: GenerateMusicArgs) -> list[str]:
    if args.lyrics and args.lyrics.strip():
        return [
            "Vocals were not sung: this server has no singing model, so each result is an "
            "instrumental; the lyrics are kept in the asset metadata."
        ]
    return []


async def _model_music(args: GenerateMusicArgs, ctx: ToolContext, model: MusicModel) -> ToolOutput:
    """generate_music on the operator's MusicGen model; bpm, key and metre are only words to
    it, so they are added to the prompt."""
    base_seed = _random_seed() if args.seed is None or args.seed < 0 else args.seed
    hints = [f"{args.bpm} bpm" if args.bpm else "", args.keyscale or ""]
    hints.append(f"{args.timesig}/{8 if args.timesig == 6 else 4} time" if args.timesig else "")
    prompt = ", ".join([args.prompt, *(hint for hint in hints if hint)])
    count = args.numberOfVariations
    scratch = ctx.store.scratch_dir()
    records: list[AssetRecord] = []
    try:
        for i in range(count):
            seed = (base_seed + i) % SEED_LIMIT
            ctx.progress(i / count, f"generating piece {i + 1} of {count} with {model.name}")
            path = await model.render(
                prompt, args.duration, seed, args.outputFormat, scratch, f"song{i}"
            )
            meta = {
                "backend": model.backend,
                "model": model.name,
                "requested_model": args.model,
                "prompt": prompt,
                "seed": seed,
                "format": args.outputFormat,
                "vocals": False,
                **({"lyrics": args.lyrics} if args.lyrics else {}),
            }
            records.append(
                await ctx.store.put_file(
                    ctx.owner, path, tool="generate_music", backend=model.backend, meta=meta
                )
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ToolOutput(
        assets=records, model=args.model, backend=model.backend, warnings=_music_warnings(args)
    )


async def generate_music(args: GenerateMusicArgs, ctx: ToolContext) -> ToolOutput:
    local = ctx.services.music
    if local is not None and args.model in local.aliases:
        return await _model_music(args, ctx, local)
    known = (
        MUSIC_MODELS
        if local is None
        else MUSIC_MODELS | dict.fromkeys(local.aliases, local.backend)
    )
    backend = resolve_model(known, args.model, "music")
    base_seed = _random_seed() if args.seed is None or args.seed < 0 else args.seed
    count = args.numberOfVariations
    warnings = _music_warnings(args)
    scratch = ctx.store.scratch_dir()
    records: list[AssetRecord] = []
    summaries = []
    try:
        for i in range(count):
            seed = (base_seed + i) % SEED_LIMIT
            ctx.progress(i / count, f"composing piece {i + 1} of {count}")
            composition = await asyncio.to_thread(
                music.compose,
                args.prompt,
                args.duration,
                seed,
                bpm=args.bpm,
                keyscale=args.keyscale,
                timesig=args.timesig,
            )
            ctx.progress((i + 0.2) / count, f"rendering piece {i + 1} of {count}")
            try:
                path = await music.render(
                    composition,
                    args.duration,
                    args.outputFormat,
                    scratch,
                    name=f"song{i}",
                    progress=spanning(ctx.progress, (i + 0.2) / count, (i + 1) / count),
                )
            except music.MusicUnavailable as exc:
                raise ToolError("MODEL_UNAVAILABLE", str(exc)) from exc
            meta = {
                "synthesized": True,
                "backend": backend,
                "model": args.model,
                "description": "Instrumental composed from the prompt as MIDI and rendered with "
                "FluidSynth and the General MIDI soundfont; not a neural music model.",
                "prompt": args.prompt,
                "seed": seed,
                "format": args.outputFormat,
                "composition": composition.summary,
                "vocals": False,
            }
            if args.lyrics:
                meta["lyrics"] = args.lyrics
            records.append(
                await ctx.store.put_file(
                    ctx.owner, path, tool="generate_music", backend=backend, meta=meta
                )
            )
            summaries.append(composition.summary)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ToolOutput(
        assets=records,
        model=args.model,
        backend=backend,
        warnings=warnings,
        extra={
            "metadata": {
                "backend": backend,
                "synthesized": True,
                "seeds": [s["seed"] for s in summaries],
                "compositions": summaries,
            }
        },
    )


# --------------------------------------------------------------------------------------------
# generate_speech

VoiceName = Literal[
    "serena", "vivian", "uncle_fu", "ryan", "aiden", "ono_anna", "sohee", "eric", "dylan"
]
LanguageName = Literal[
    "auto",
    "english",
    "chinese",
    "japanese",
    "korean",
    "german",
    "french",
    "russian",
    "portuguese",
    "spanish",
    "italian",
]


class GenerateSpeechArgs(ToolArgs):
    prompt: str = Field(description="The exact text to speak, read verbatim.", max_length=4096)
    model: str = Field(
        "voice",
        description="'voice' speaks with a preset voice; 'clone' and 'design' need neural "
        "voice models that this server does not have.",
    )
    voice: VoiceName | None = Field(None, description="Preset voice (default serena).")
    voiceDescription: str | None = Field(
        None, max_length=512, description="Voice description for the 'design' model."
    )
    voiceSourceIndex: AudioIndex | None = Field(
        None, description="Audio index of the voice to clone (for the 'clone' model)."
    )
    voice_source_url: str | None = Field(
        None, description="URL of the voice to clone (for the 'clone' model)."
    )
    voiceTranscript: str | None = Field(
        None, max_length=1024, description="Transcript of the voice sample (for 'clone')."
    )
    language: LanguageName = Field("auto", description="Language of the text; auto guesses it.")
    creativity: float = Field(
        0.9, ge=0.1, le=2.0, description="How much pitch and pace vary between renditions."
    )
    outputFormat: AudioFormat = Field("mp3", description="Audio container/codec.")
    seed: int | None = Field(None, ge=0, lt=SEED_LIMIT, description="Seed; omitted = random.")
    numberOfVariations: int = Field(1, ge=1, le=16, description="How many renditions.")

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str) -> str:
        return _strip_required(value)

    @field_validator("voice", "language", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


def _speech_cost(args: GenerateSpeechArgs) -> float:
    return args.numberOfVariations * (0.1 + len(args.prompt) / 2000.0)


async def generate_speech(args: GenerateSpeechArgs, ctx: ToolContext) -> ToolOutput:
    resolve_model(SPEECH_MODELS, args.model, "speech")  # refuses clone/design and unknown ids
    warnings: list[str] = []
    ignored = [
        name
        for name in ("voiceDescription", "voiceSourceIndex", "voice_source_url", "voiceTranscript")
        if getattr(args, name) is not None
    ]
    if ignored:
        warnings.append(
            f"{', '.join(ignored)} only apply to the clone/design models, which are not "
            "installed; a preset voice was used."
        )
    base_seed = _random_seed() if args.seed is None else args.seed
    count = args.numberOfVariations
    scratch = ctx.store.scratch_dir()
    records: list[AssetRecord] = []
    engines: list[str] = []
    try:
        for i in range(count):
            seed = (base_seed + i) % SEED_LIMIT
            settings = speech.settings_for(
                args.prompt, args.voice, args.language, args.creativity, seed
            )
            ctx.progress(i / count, f"speaking rendition {i + 1} of {count}")
            try:
                spoken = await speech.synthesize(
                    args.prompt,
                    settings,
                    args.outputFormat,
                    scratch,
                    name=f"speech{i}",
                    progress=spanning(ctx.progress, i / count, (i + 1) / count),
                )
            except speech.SpeechUnavailable as exc:
                raise ToolError("MODEL_UNAVAILABLE", str(exc)) from exc
            except speech.NothingToSay as exc:
                raise ToolError("PARAMETER_INVALID", f"prompt: {exc}") from exc
            warnings += [w for w in spoken.warnings if w not in warnings]
            engines.append(spoken.engine)
            meta = {
                "synthesized": True,
                "backend": spoken.engine,
                "model": args.model,
                "text": args.prompt,
                "format": args.outputFormat,
                "creativity": args.creativity,
                **spoken.details,
            }
            records.append(
                await ctx.store.put_file(
                    ctx.owner, spoken.path, tool="generate_speech", backend=spoken.engine, meta=meta
                )
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    backend = "+".join(dict.fromkeys(engines))  # one engine, unless the neural voice failed
    return ToolOutput(
        assets=records,
        model=args.model,
        backend=backend,
        warnings=warnings,
        extra={"metadata": {"backend": backend, "synthesized": True}},
    )


TOOLS = tool_family(
    "media",
    "audio",
    [
        Tool(
            name="generate_music",
            description=(
                "Compose and render an instrumental piece from a text description (genre, mood, "
                "instruments, tempo). Optional bpm, key (keyscale), beats per bar (timesig) and "
                "seed make it precise and repeatable. Lyrics are accepted but not sung. Returns "
                "audio assets at the next audio indices."
            ),
            args=GenerateMusicArgs,
            run=generate_music,
            cost=_music_cost,
        ),
        Tool(
            name="generate_speech",
            description=(
                "Turn text into spoken audio with a preset voice (model 'voice'): a neural voice "
                "for English, a formant synthesizer for other languages. The text is read word for "
                "word; pick a voice and language or let the language be detected. Voice cloning "
                "and voice design are not available on this server."
            ),
            args=GenerateSpeechArgs,
            run=generate_speech,
            cost=_speech_cost,
        ),
    ],
)
