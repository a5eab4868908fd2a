"""Which speech engine speaks what: the neural voice from the wheel for English (never a
download), espeak-ng for other languages and whenever the neural voice fails."""

from __future__ import annotations

import urllib.request
import wave
from pathlib import Path

import hibari
import pytest
from hibari.voices import VOICES, voice_path

from sogni_intelligence.media import hibari_voice, speech

TEXT = "Good morning, the coffee is ready."


def test_only_voices_inside_the_wheel_are_used() -> None:
    package = Path(hibari.__file__).parent
    bundled = hibari_voice.bundled_voices()
    assert [v.name for v in bundled] == ["heart"]
    for voice in bundled:
        path = Path(voice_path(voice.name, download_missing=False))
        assert path.is_file() and package in path.parents
    # A male preset gets the bundled voice, not one of the downloadable male voices.
    assert any(not spec.get("bundled") and spec["gender"] == "male" for spec in VOICES.values())
    assert hibari_voice.voice_for("male").name == "heart"


def test_loading_and_speaking_never_touch_the_network(tmp_path, monkeypatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("hibari tried to download something")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setenv("HIBARI_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(hibari_voice, "_loaded", {})  # load the model afresh
    out = tmp_path / "hello.wav"

    rate = hibari_voice.speak_to_wav(TEXT, hibari_voice.voice_for("female"), 1.0, 3, out)

    assert rate == 24000
    with wave.open(str(out), "rb") as handle:
        assert handle.getframerate() == 24000 and handle.getnchannels() == 1
        assert 1.0 < handle.getnframes() / 24000 < 5.0
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("text", "language", "engine"),
    [
        (TEXT, "auto", speech.NEURAL),
        (TEXT, "english", speech.NEURAL),
        ("Bonjour, le café est prêt pour vous.", "auto", speech.ESPEAK),
        (TEXT, "italian", speech.ESPEAK),
        ("こんにちは", "auto", speech.ESPEAK),
    ],
)
def test_engine_by_language(text: str, language: str, engine: str) -> None:
    assert speech.settings_for(text, None, language, 0.9, 1).engine == engine


async def test_a_failing_neural_voice_falls_back_to_espeak(tmp_path, monkeypatch) -> None:
    def broken(*args: object) -> int:
        raise RuntimeError("onnx session lost")

    monkeypatch.setattr(hibari_voice, "speak_to_wav", broken)
    settings = speech.settings_for(TEXT, "serena", "english", 0.9, 1)
    assert settings.engine == speech.NEURAL

    spoken = await speech.synthesize(TEXT, settings, "wav", tmp_path)

    assert spoken.engine == speech.ESPEAK and spoken.details["engine"] == "espeak-ng"
    assert spoken.details["espeak_voice"] == "en-us+f2"
    assert "onnx session lost" in spoken.details["fallback_reason"]
    assert any("espeak-ng spoke instead" in w for w in spoken.warnings)
    with wave.open(str(spoken.path), "rb") as handle:
        assert handle.getframerate() == speech.OUTPUT_RATE and handle.getnframes() > 22050
