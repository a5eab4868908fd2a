"""Text to speech: the neural hibari-tts voice for English, espeak-ng for everything else.

hibari-tts (see `hibari_voice`) speaks English with a natural voice from weights inside its
wheel; espeak-ng, a formant synthesizer (clear but plainly robotic), speaks the other languages
and stands in whenever the neural voice is missing or fails. The public voice names (serena,
ryan, ...) carry a gender, pitch and pace: espeak-ng gets them as voice variants, the neural
voice as its pace (and the bundled voice closest in gender). The language picks the engine and
espeak-ng's pronunciation rules, or is guessed from the script of the text. `creativity` widens
a seeded wobble of pitch and pace, so variations differ. Every output is mono at 22.05 kHz.
"""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import wave
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from sogni_intelligence.media import hibari_voice
from sogni_intelligence.media.ffmpeg import ffmpeg, run_process
from sogni_intelligence.media.music import codec_args
from sogni_intelligence.media.progress import Progress, spanning, unheard

FORMATS = ("wav", "mp3", "flac")
BASE_SPEED_WPM = 165
ESPEAK = "espeak-ng"
NEURAL = hibari_voice.ENGINE
OUTPUT_RATE = 22_050  # espeak-ng's own rate; the neural voice's 24 kHz is resampled to it
ESPEAK_NOTE = (
    "Speech synthesized by espeak-ng (a formant synthesizer); the preset voice name is mapped "
    "to an espeak-ng voice variant."
)
NEURAL_NOTE = (
    "Speech synthesized by hibari-tts, a neural text-to-speech model (ONNX, distilled from "
    "Kokoro-82M) whose weights ship inside its Python package; resampled from 24 kHz."
)


class SpeechUnavailable(Exception):
    """espeak-ng is not installed on this machine."""


@dataclass(frozen=True)
class Voice:
    variant: str  # espeak-ng voice variant (the part after "+")
    pitch: int  # espeak-ng -p, 0..99
    pace: float  # multiplier on the base words-per-minute
    gender: str


VOICES: dict[str, Voice] = {
    "serena": Voice("f2", 56, 0.97, "female"),
    "vivian": Voice("f4", 62, 1.03, "female"),
    "ono_anna": Voice("f3", 66, 1.0, "female"),
    "sohee": Voice("f5", 60, 0.98, "female"),
    "uncle_fu": Voice("m7", 30, 0.9, "male"),
    "ryan": Voice("m3", 44, 1.02, "male"),
    "aiden": Voice("m1", 50, 1.06, "male"),
    "eric": Voice("m2", 40, 0.96, "male"),
    "dylan": Voice("m4", 47, 1.04, "male"),
}
DEFAULT_VOICE = "serena"

LANGUAGES: dict[str, str] = {
    "english": "en-us",
    "chinese": "cmn",
    "japanese": "ja",
    "korean": "ko",
    "german": "de",
    "french": "fr-fr",
    "russian": "ru",
    "portuguese": "pt",
    "spanish": "es",
    "italian": "it",
}

_SCRIPTS = (
    (re.compile(r"[\u3040-\u30ff]"), "japanese"),  # kana before Han: Japanese uses both
    (re.compile(r"[\uac00-\ud7af\u1100-\u11ff]"), "korean"),
    (re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]"), "chinese"),
    (re.compile(r"[\u0400-\u04ff]"), "russian"),
)
# A few very common words that tell Latin-script languages apart well enough for a default.
_COMMON_WORDS = {
    "german": {"der", "die", "das", "und", "ist", "nicht", "ich", "sie", "ein", "eine", "mit"},
    "french": {"le", "la", "les", "et", "est", "une", "des", "je", "vous", "pas", "avec", "pour"},
    "spanish": {"el", "los", "las", "y", "es", "una", "que", "por", "con", "para", "muy", "pero"},
    "italian": {"il", "lo", "gli", "e", "è", "una", "che", "non", "per", "con", "sono", "della"},
    "portuguese": {"o", "os", "as", "e", "é", "uma", "não", "com", "para", "um", "você", "muito"},
    "english": {"the", "and", "is", "are", "you", "this", "that", "with", "for", "of", "to", "it"},
}


def detect_language(text: str) -> str:
    """The language name for `auto`: from the script, else from common words; English default."""
    for pattern, language in _SCRIPTS:
        if pattern.search(text):
            return language
    words = re.findall(r"[^\W\d_]+", text.lower())
    if not words:
        return "english"
    scores = {lang: sum(w in common for w in words) for lang, common in _COMMON_WORDS.items()}
    best = max(scores, key=lambda lang: (scores[lang], lang == "english"))
    return best if scores[best] > 0 else "english"


@dataclass(frozen=True)
class SpeechSettings:
    voice: str
    language: str
    engine: str  # NEURAL for English when hibari-tts is installed, else ESPEAK
    espeak_voice: str
    pitch: int
    pace: float  # multiplier on the voice's normal speed
    seed: int

    @property
    def speed_wpm(self) -> int:
        return max(80, min(400, round(BASE_SPEED_WPM * self.pace)))

    def describe(self) -> dict[str, Any]:
        """What was asked of the engine that ran (espeak-ng's pitch means nothing to hibari)."""
        common = {"voice": self.voice, "language": self.language, "seed": self.seed}
        if self.engine == NEURAL:
            return {**common, "speed": self.neural_speed}
        return {
            **common,
            "espeak_voice": self.espeak_voice,
            "pitch": self.pitch,
            "speed_wpm": self.speed_wpm,
        }

    @property
    def neural_speed(self) -> float:
        low, high = hibari_voice.SPEED_RANGE
        return round(max(low, min(high, self.pace)), 3)


def settings_for(
    text: str, voice: str | None, language: str, creativity: float, seed: int
) -> SpeechSettings:
    """Pick the engine, voice, pitch and pace for one rendition."""
    name = voice or DEFAULT_VOICE
    spec = VOICES[name]
    lang = detect_language(text) if language == "auto" else language
    rng = random.Random(seed)
    # creativity 0.1..2 -> up to about ±14 pitch steps and ±12 % pace.
    pitch = spec.pitch + round(rng.uniform(-7.0, 7.0) * creativity)
    pace = spec.pace * (1.0 + rng.uniform(-0.06, 0.06) * creativity)
    neural = lang == "english" and bool(hibari_voice.bundled_voices())
    return SpeechSettings(
        voice=name,
        language=lang,
        engine=NEURAL if neural else ESPEAK,
        espeak_voice=f"{LANGUAGES[lang]}+{spec.variant}",
        pitch=max(0, min(99, pitch)),
        pace=pace,
        seed=seed,
    )


def espeak_exe() -> str:
    found = shutil.which("espeak-ng")
    if found is None:
        raise SpeechUnavailable("espeak-ng is not installed (Debian package espeak-ng)")
    return found


def _audible(path: Path) -> bool:
    """Whether the WAV espeak-ng wrote holds more than silence."""
    try:
        with wave.open(str(path), "rb") as handle:
            if handle.getsampwidth() != 2:
                return handle.getnframes() > 0
            samples = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
    except (wave.Error, EOFError, OSError):
        return False
    return samples.size > 0 and int(np.abs(samples.astype(np.int32)).max()) > 64


class NothingToSay(Exception):
    """The text produced no audio (for example, only punctuation)."""


@dataclass
class Speech:
    """One spoken file and what made it (for the asset's metadata)."""

    path: Path
    engine: str
    details: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


async def synthesize(
    text: str,
    settings: SpeechSettings,
    fmt: str,
    workdir: Path,
    name: str = "speech",
    progress: Progress = unheard,
) -> Speech:
    """Speak `text` into `workdir/name.fmt` with the settings' engine, falling back to
    espeak-ng when the neural voice cannot speak it. The neural voice's progress is the share
    of the text spoken; both then report the encoder's."""
    warnings: list[str] = []
    if settings.engine == NEURAL:
        try:
            spoken = await _speak_neural(text, settings, fmt, workdir, name, progress)
        except Exception as exc:  # an optional engine: any failure falls back to espeak-ng
            warnings.append(f"the neural voice failed ({exc}); espeak-ng spoke instead")
        else:
            if spoken is not None:
                return spoken
            warnings.append("the neural voice found nothing to pronounce; espeak-ng spoke instead")
        settings = replace(settings, engine=ESPEAK)
    path = await _speak_espeak(text, settings, fmt, workdir, name, progress)
    details = {"engine": ESPEAK, "description": ESPEAK_NOTE, **settings.describe()}
    if warnings:
        details["fallback_reason"] = warnings[-1]
    return Speech(path, ESPEAK, details, warnings)


async def _speak_neural(
    text: str, settings: SpeechSettings, fmt: str, workdir: Path, name: str, progress: Progress
) -> Speech | None:
    gender = VOICES[settings.voice].gender
    voice = hibari_voice.voice_for(gender)
    raw_path = workdir / f"{name}.raw.wav"
    loop = asyncio.get_running_loop()

    def spoken(fraction: float) -> None:
        # Called in the worker thread; progress belongs to the event loop.
        loop.call_soon_threadsafe(progress, 0.9 * fraction, "speaking")

    rate = await asyncio.to_thread(
        hibari_voice.speak_to_wav,
        text,
        voice,
        settings.neural_speed,
        settings.seed,
        raw_path,
        spoken,
    )
    if not rate:
        return None
    out_path = await _encode(raw_path, fmt, workdir / f"{name}.{fmt}", spanning(progress, 0.9, 1))
    warnings = []
    if voice.gender != gender:
        warnings.append(
            f"voice {settings.voice} is a {gender} preset, but the neural English voice "
            f"installed is {voice.gender} ({voice.name}); it spoke in that voice"
        )
    details = {
        "engine": NEURAL,
        "description": NEURAL_NOTE,
        "model_sample_rate": rate,
        **voice.describe(),
        **settings.describe(),
    }
    return Speech(out_path, NEURAL, details, warnings)


async def _speak_espeak(
    text: str, settings: SpeechSettings, fmt: str, workdir: Path, name: str, progress: Progress
) -> Path:
    exe = espeak_exe()
    text_path = workdir / f"{name}.txt"
    raw_path = workdir / f"{name}.raw.wav"
    text_path.write_text(text, encoding="utf-8")
    # The text goes through a file, never argv, so a leading "-" is not read as an option.
    await run_process(
        exe,
        "-b",
        "1",
        "-v",
        settings.espeak_voice,
        "-p",
        str(settings.pitch),
        "-s",
        str(settings.speed_wpm),
        "-f",
        str(text_path),
        "-w",
        str(raw_path),
        timeout_s=120,
    )
    text_path.unlink(missing_ok=True)
    if not _audible(raw_path):
        raise NothingToSay("the text contains nothing that can be spoken")
    return await _encode(raw_path, fmt, workdir / f"{name}.{fmt}", progress)


async def _encode(raw_path: Path, fmt: str, out_path: Path, progress: Progress) -> Path:
    """The raw WAV as mono `fmt` at OUTPUT_RATE; the raw file is removed."""
    rate = str(OUTPUT_RATE)
    with wave.open(str(raw_path)) as raw:
        duration_s = raw.getnframes() / raw.getframerate()
    await ffmpeg(
        *("-i", str(raw_path), "-ac", "1", "-ar", rate, *codec_args(fmt, "96k"), str(out_path)),
        progress=progress,
        duration_s=duration_s,
    )
    raw_path.unlink(missing_ok=True)
    return out_path
