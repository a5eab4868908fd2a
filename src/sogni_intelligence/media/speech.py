"""Text to speech with espeak-ng: a formant synthesizer, clear but plainly robotic.

The public voice names (serena, ryan, ...) become espeak-ng voice variants with their own pitch
and pace; the language picks espeak-ng's pronunciation rules, or is guessed from the script of
the text. `creativity` widens a seeded wobble of pitch and pace, so variations differ.
"""

from __future__ import annotations

import random
import re
import shutil
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sogni_intelligence.media.ffmpeg import ffmpeg, run_process
from sogni_intelligence.media.music import codec_args

FORMATS = ("wav", "mp3", "flac")
BASE_SPEED_WPM = 165


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
    espeak_voice: str
    pitch: int
    speed_wpm: int
    seed: int

    def describe(self) -> dict[str, Any]:
        return {
            "voice": self.voice,
            "language": self.language,
            "espeak_voice": self.espeak_voice,
            "pitch": self.pitch,
            "speed_wpm": self.speed_wpm,
            "seed": self.seed,
        }


def settings_for(
    text: str, voice: str | None, language: str, creativity: float, seed: int
) -> SpeechSettings:
    """Pick the espeak-ng voice, pitch and pace for one rendition."""
    name = voice or DEFAULT_VOICE
    spec = VOICES[name]
    lang = detect_language(text) if language == "auto" else language
    rng = random.Random(seed)
    # creativity 0.1..2 -> up to about ±14 pitch steps and ±12 % pace.
    pitch = spec.pitch + round(rng.uniform(-7.0, 7.0) * creativity)
    pace = spec.pace * (1.0 + rng.uniform(-0.06, 0.06) * creativity)
    return SpeechSettings(
        voice=name,
        language=lang,
        espeak_voice=f"{LANGUAGES[lang]}+{spec.variant}",
        pitch=max(0, min(99, pitch)),
        speed_wpm=max(80, min(400, round(BASE_SPEED_WPM * pace))),
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


async def synthesize(
    text: str, settings: SpeechSettings, fmt: str, workdir: Path, name: str = "speech"
) -> Path:
    """Speak `text` into `workdir/name.fmt` (mono, espeak-ng's 22.05 kHz)."""
    exe = espeak_exe()
    text_path = workdir / f"{name}.txt"
    raw_path = workdir / f"{name}.raw.wav"
    out_path = workdir / f"{name}.{fmt}"
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
    if not _audible(raw_path):
        raise NothingToSay("the text contains nothing that can be spoken")
    await ffmpeg("-i", str(raw_path), "-ac", "1", *codec_args(fmt, "96k"), str(out_path))
    raw_path.unlink(missing_ok=True)
    text_path.unlink(missing_ok=True)
    return out_path
