"""generate_music and generate_speech against the real FluidSynth, hibari-tts, espeak-ng and
ffmpeg."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path

import pytest

from sogni_intelligence.media import hibari_voice, music, speech
from sogni_intelligence.tools.audio_tools import TOOLS
from sogni_intelligence.tools.base import ToolContext, execute

from .conftest import asset_file, ffprobe

BY_NAME = {tool.name: tool for tool in TOOLS}


async def run(ctx: ToolContext, name: str, **arguments):
    return await execute(BY_NAME[name], arguments, ctx)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def audio_stream(report: dict) -> dict:
    streams = [s for s in report["streams"] if s["codec_type"] == "audio"]
    assert len(streams) == 1, report
    return streams[0]


def composition(result: dict, index: int = 0) -> dict:
    return result["output_assets"][index]["metadata"]["composition"]


# --------------------------------------------------------------------------------------------
# generate_music


@pytest.mark.parametrize(
    ("fmt", "codec", "duration"),
    [("wav", "pcm_s16le", 10), ("mp3", "mp3", 11.5), ("flac", "flac", 12)],
)
async def test_music_decodes_at_the_requested_length(ctx, progress_log, fmt, codec, duration):
    result = await run(
        ctx, "generate_music", prompt="happy pop song", duration=duration, outputFormat=fmt, seed=5
    )

    assert result["ok"] is True, result
    assert result["media_type"] == "audio"
    assert result["indices"] == [0] and result["audioStartIndex"] == 0
    assert result["model"] == "minimax_music3"
    assert result["backend"] == "midi-fluidsynth"
    asset = result["output_assets"][0]
    assert asset["type"] == "audio"
    assert abs(asset["duration_seconds"] - duration) <= 0.1
    meta = asset["metadata"]
    assert meta["synthesized"] is True and meta["backend"] == "midi-fluidsynth"
    assert meta["format"] == fmt and meta["seed"] == 5

    report = ffprobe(await asset_file(ctx, result))
    stream = audio_stream(report)
    assert stream["codec_name"] == codec
    assert int(stream["sample_rate"]) == 44100
    assert stream["channels"] == 2
    assert abs(float(report["format"]["duration"]) - duration) <= 0.1
    assert progress_log and progress_log[-1][0] == 1.0


async def test_music_reports_the_duration_rendered(ctx, progress_log):
    """A minute of music: FluidSynth's output growing, then the encoder, as increasing
    fractions between the composing tick and the end."""
    result = await run(
        ctx, "generate_music", prompt="calm piano", duration=60, outputFormat="mp3", seed=2
    )
    assert result["ok"] is True, result
    fractions = [fraction for fraction, _ in progress_log]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    rendering = [(f, m) for f, m in progress_log if m in ("synthesizing", "encoding")]
    assert len(rendering) >= 2, progress_log
    assert all(0.2 < f < 1 for f, _ in rendering)


async def test_prompt_words_choose_tempo_and_instruments(ctx):
    calm = await run(
        ctx, "generate_music", prompt="calm piano", duration=10, outputFormat="wav", seed=1
    )
    rock = await run(
        ctx,
        "generate_music",
        prompt="energetic rock drums",
        duration=10,
        outputFormat="wav",
        seed=1,
    )
    calm_c, rock_c = composition(calm), composition(rock)

    assert calm_c["style"] == "calm" and rock_c["style"] == "rock"
    assert calm_c["tempo_bpm"] < 90 < 120 < rock_c["tempo_bpm"]
    calm_names = [i["name"] for i in calm_c["instruments"]]
    rock_names = [i["name"] for i in rock_c["instruments"]]
    assert calm_c["instruments"][0]["role"] == "lead" and "Piano" in calm_names[0]
    assert not any("Drum" in n for n in calm_names)
    assert any("Guitar" in n for n in rock_names)
    assert any("Drum" in n for n in rock_names)
    for summary in (calm_c, rock_c):
        names = [s["name"] for s in summary["sections"]]
        assert names[0] == "intro" and names[-1] == "outro"
        assert all(s["chords"] for s in summary["sections"])


async def test_explicit_bpm_key_and_time_signature_win(ctx):
    result = await run(
        ctx,
        "generate_music",
        prompt="energetic rock",
        duration=10,
        bpm=90,
        keyscale="A minor",
        timesig="3/4",
        outputFormat="wav",
        seed=3,
    )
    summary = composition(result)
    assert summary["tempo_bpm"] == 90
    assert summary["key"] == "A minor"
    assert summary["time_signature"] == "3/4"
    # A minor's diatonic chords only.
    allowed = {"Am", "Bdim", "C", "Dm", "Em", "F", "G"}
    chords = {c for s in summary["sections"] for c in s["chords"]}
    assert chords <= allowed, chords


async def test_same_seed_same_file_other_seed_other_file(ctx):
    args = {"prompt": "lofi chill beats", "duration": 10, "outputFormat": "wav"}
    first = await run(ctx, "generate_music", seed=42, **args)
    again = await run(ctx, "generate_music", seed=42, **args)
    other = await run(ctx, "generate_music", seed=43, **args)

    a, b, c = [sha256(await asset_file(ctx, r)) for r in (first, again, other)]
    assert a == b
    assert a != c
    assert first["indices"] == [0] and again["indices"] == [1] and other["indices"] == [2]


async def test_lyrics_give_an_instrumental_with_a_warning(ctx):
    lyrics = "[verse]\nHello sunshine, hello day\n[chorus]\nLa la la"
    result = await run(
        ctx,
        "generate_music",
        prompt="pop song",
        lyrics=lyrics,
        duration=10,
        outputFormat="mp3",
        seed=9,
    )

    assert result["ok"] is True, result
    assert any("not sung" in w for w in result["warnings"])
    meta = result["output_assets"][0]["metadata"]
    assert meta["lyrics"] == lyrics
    assert meta["vocals"] is False
    assert audio_stream(ffprobe(await asset_file(ctx, result)))["codec_name"] == "mp3"


async def test_variations_get_distinct_seeds_and_consecutive_indices(ctx):
    result = await run(
        ctx,
        "generate_music",
        prompt="jazz lounge",
        duration=10,
        numberOfVariations=2,
        outputFormat="flac",
        seed=100,
    )
    assert result["indices"] == [0, 1] and result["audioStartIndex"] == 0
    seeds = [a["metadata"]["seed"] for a in result["output_assets"]]
    assert seeds == [100, 101]
    assert sha256(await asset_file(ctx, result, 0)) != sha256(await asset_file(ctx, result, 1))
    assert result["metadata"]["seeds"] == [100, 101]

    second = await run(
        ctx, "generate_music", prompt="jazz lounge", duration=10, outputFormat="flac", seed=7
    )
    assert second["indices"] == [2] and second["audioStartIndex"] == 2
    assert [r.id for r in ctx.media.generated["audio"]][2] == second["output_assets"][0]["asset_id"]


@pytest.mark.parametrize(
    ("arguments", "error_type"),
    [
        ({"prompt": "x", "model": "no-such-model"}, "PARAMETER_INVALID"),
        ({"prompt": "   "}, "PARAMETER_INVALID"),
        ({"prompt": "x", "duration": 5}, "PARAMETER_INVALID"),
        ({"prompt": "x", "duration": 601}, "PARAMETER_INVALID"),
        ({"prompt": "x", "bpm": 400}, "PARAMETER_INVALID"),
        ({"prompt": "x", "keyscale": "H major"}, "PARAMETER_INVALID"),
        ({"prompt": "x", "timesig": 5}, "PARAMETER_INVALID"),
        ({"prompt": "x", "outputFormat": "ogg"}, "PARAMETER_INVALID"),
        ({"prompt": "x", "numberOfVariations": 17}, "PARAMETER_INVALID"),
        ({"prompt": "x", "unknownArgument": 1}, "PARAMETER_INVALID"),
    ],
)
async def test_music_rejects_bad_arguments(ctx, arguments, error_type):
    result = await execute(BY_NAME["generate_music"], arguments, ctx)
    assert result["ok"] is False
    assert result["error_type"] == error_type, result
    assert ctx.media.generated["audio"] == []


def _processes_mentioning(marker: str) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\x00", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(f"{entry}: {cmdline}")
    return found


async def test_cancelling_a_long_piece_stops_the_renderer(ctx, store):
    marker = str(store.root)
    task = asyncio.create_task(
        run(
            ctx,
            "generate_music",
            prompt="epic orchestral",
            duration=600,
            outputFormat="mp3",
            seed=1,
        )
    )
    for _ in range(400):  # composing comes first; wait until the renderer process runs
        if _processes_mentioning(marker):
            break
        await asyncio.sleep(0.025)
    assert _processes_mentioning(marker), "the renderer never started"
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 2.0
    assert _processes_mentioning(marker) == []
    assert list((store.root / "tmp").iterdir()) == []
    assert ctx.media.generated["audio"] == []


def test_keyscale_parsing():
    assert music.parse_keyscale("C major") == (0, "major")
    assert music.parse_keyscale("a minor") == (9, "minor")
    assert music.parse_keyscale("F# minor") == (6, "minor")
    assert music.parse_keyscale("Bb") == (10, "major")
    assert music.parse_keyscale("Ebm") == (3, "minor")
    with pytest.raises(ValueError):
        music.parse_keyscale("major C")


def test_song_form_fills_the_bars():
    for total in (1, 2, 3, 7, 12, 40, 150):
        sections = music.plan_sections(total)
        assert sum(bars for _, bars in sections) == total
        assert all(bars > 0 for _, bars in sections)


# --------------------------------------------------------------------------------------------
# generate_speech

SENTENCE = "The quick brown fox jumps over the lazy dog."


@pytest.mark.parametrize(("fmt", "codec"), [("wav", "pcm_s16le"), ("mp3", "mp3"), ("flac", "flac")])
async def test_english_speech_is_the_neural_voice_and_decodes(ctx, tmp_path, fmt, codec):
    result = await run(ctx, "generate_speech", prompt=SENTENCE, outputFormat=fmt, seed=1)

    assert result["ok"] is True, result
    assert result["backend"] == "hibari-tts" and result["model"] == "voice"
    assert result["media_type"] == "audio" and result["indices"] == [0]
    asset = result["output_assets"][0]
    meta = asset["metadata"]
    assert meta["synthesized"] is True and meta["backend"] == meta["engine"] == "hibari-tts"
    assert meta["neural_voice"] == "heart" and meta["model_sample_rate"] == 24000
    assert (
        meta["neural_model"].startswith("hibari-tts 0.2.1") and "hibari-tts" in meta["description"]
    )
    assert meta["text"] == SENTENCE and meta["language"] == "english"
    report = ffprobe(await asset_file(ctx, result))
    stream = audio_stream(report)
    assert stream["codec_name"] == codec and int(stream["channels"]) == 1
    assert int(stream["sample_rate"]) == speech.OUTPUT_RATE == 22050
    seconds = float(report["format"]["duration"])
    assert abs(asset["duration_seconds"] - seconds) < 0.1
    # Nine words at a natural 120-220 words a minute, and as long as the model's own output.
    assert 9 / 220 * 60 < seconds < 9 / 120 * 60
    voice = hibari_voice.voice_for("female")
    raw = tmp_path / "direct.wav"
    rate = hibari_voice.speak_to_wav(SENTENCE, voice, meta["speed"], 1, raw)
    direct = ffprobe(raw)
    assert rate == 24000 and int(audio_stream(direct)["sample_rate"]) == 24000
    assert abs(float(direct["format"]["duration"]) - seconds) < 0.06


async def test_longer_text_gives_longer_audio(ctx):
    short = await run(ctx, "generate_speech", prompt="Hello there.", outputFormat="wav", seed=1)
    long = await run(
        ctx, "generate_speech", prompt=" ".join([SENTENCE] * 4), outputFormat="wav", seed=1
    )
    short_s = short["output_assets"][0]["duration_seconds"]
    long_s = long["output_assets"][0]["duration_seconds"]
    assert long_s > 3 * short_s


async def test_the_neural_voice_reports_the_text_spoken(ctx, progress_log):
    result = await run(
        ctx, "generate_speech", prompt=" ".join([SENTENCE] * 3), outputFormat="wav", seed=1
    )
    assert result["ok"] is True and result["output_assets"][0]["metadata"]["engine"] == "hibari-tts"
    speaking = [fraction for fraction, message in progress_log if message == "speaking"]
    # One tick per sentence spoken, the last at 90 % (the encoder has the rest).
    assert len(speaking) >= 3 and speaking == sorted(speaking), progress_log
    assert speaking[-1] == pytest.approx(0.9) and 0 < speaking[0] < 0.9
    assert progress_log[-1][0] == 1.0


async def test_other_languages_are_spoken_by_espeak(ctx):
    german = await run(
        ctx,
        "generate_speech",
        prompt="Guten Tag, wie geht es Ihnen?",
        voice="ryan",
        language="german",
        outputFormat="wav",
        seed=2,
    )
    assert german["backend"] == "espeak-ng", german
    meta = german["output_assets"][0]["metadata"]
    assert meta["engine"] == "espeak-ng" and "espeak-ng" in meta["description"]
    assert (
        meta["espeak_voice"] == "de+m3" and meta["voice"] == "ryan" and meta["language"] == "german"
    )
    stream = audio_stream(ffprobe(await asset_file(ctx, german)))
    assert int(stream["sample_rate"]) == 22050

    chinese = await run(
        ctx,
        "generate_speech",
        prompt="你好，欢迎来到这里。",
        voice="vivian",
        outputFormat="wav",
        seed=2,
    )
    meta = chinese["output_assets"][0]["metadata"]
    assert chinese["backend"] == "espeak-ng" and "warnings" not in chinese
    assert meta["language"] == "chinese" and meta["espeak_voice"] == "cmn+f4"


async def test_english_text_the_neural_voice_cannot_read_falls_back_to_espeak(ctx):
    result = await run(
        ctx,
        "generate_speech",
        prompt="你好，欢迎来到这里。",
        language="english",
        outputFormat="wav",
    )
    assert result["ok"] is True and result["backend"] == "espeak-ng", result
    meta = result["output_assets"][0]["metadata"]
    assert (
        meta["espeak_voice"].startswith("en-us+")
        and "nothing to pronounce" in (meta["fallback_reason"])
    )
    assert any("espeak-ng spoke instead" in w for w in result["warnings"])
    assert result["output_assets"][0]["duration_seconds"] > 1.0


async def test_a_male_preset_in_english_is_named_in_a_warning(ctx):
    result = await run(ctx, "generate_speech", prompt=SENTENCE, voice="ryan", outputFormat="wav")
    assert result["backend"] == "hibari-tts"
    meta = result["output_assets"][0]["metadata"]
    assert meta["voice"] == "ryan" and meta["neural_voice_gender"] == "female"
    assert any("ryan" in w and "male" in w for w in result["warnings"])


async def test_speech_seed_and_variations(ctx):
    first = await run(
        ctx, "generate_speech", prompt=SENTENCE, outputFormat="wav", seed=11, creativity=1.5
    )
    again = await run(
        ctx, "generate_speech", prompt=SENTENCE, outputFormat="wav", seed=11, creativity=1.5
    )
    assert sha256(await asset_file(ctx, first)) == sha256(await asset_file(ctx, again))

    both = await run(
        ctx,
        "generate_speech",
        prompt=SENTENCE,
        outputFormat="wav",
        seed=11,
        creativity=1.5,
        numberOfVariations=2,
    )
    assert both["indices"] == [2, 3]
    metas = [a["metadata"] for a in both["output_assets"]]
    assert metas[0]["seed"] != metas[1]["seed"] and metas[0]["speed"] != metas[1]["speed"]
    files = [await asset_file(ctx, both, i) for i in (0, 1)]
    assert sha256(files[0]) != sha256(files[1])


async def test_clone_arguments_with_a_preset_voice_warn(ctx):
    result = await run(
        ctx,
        "generate_speech",
        prompt="Hello.",
        voiceDescription="a deep warm voice",
        outputFormat="wav",
    )
    assert result["ok"] is True
    assert any("voiceDescription" in w for w in result["warnings"])


@pytest.mark.parametrize(
    ("arguments", "error_type"),
    [
        ({"prompt": "Hello", "model": "clone", "voiceSourceIndex": -1}, "MODEL_UNAVAILABLE"),
        (
            {"prompt": "Hello", "model": "design", "voiceDescription": "a pirate"},
            "MODEL_UNAVAILABLE",
        ),
        ({"prompt": "Hello", "model": "tts-9000"}, "PARAMETER_INVALID"),
        ({"prompt": ""}, "PARAMETER_INVALID"),
        ({"prompt": "  \n "}, "PARAMETER_INVALID"),
        ({"prompt": "x" * 4097}, "PARAMETER_INVALID"),
        ({"prompt": "Hello", "voice": "bob"}, "PARAMETER_INVALID"),
        ({"prompt": "Hello", "language": "klingon"}, "PARAMETER_INVALID"),
        ({"prompt": "Hello", "creativity": 3}, "PARAMETER_INVALID"),
        ({"prompt": "...", "outputFormat": "wav"}, "PARAMETER_INVALID"),
    ],
)
async def test_speech_errors(ctx, arguments, error_type):
    result = await execute(BY_NAME["generate_speech"], arguments, ctx)
    assert result["ok"] is False
    assert result["error_type"] == error_type, result


def test_costs_grow_with_the_work():
    music_tool, speech_tool = BY_NAME["generate_music"], BY_NAME["generate_speech"]
    small = music_tool.cost(music_tool.args.model_validate({"prompt": "x", "duration": 10}))
    big = music_tool.cost(
        music_tool.args.model_validate({"prompt": "x", "duration": 300, "numberOfVariations": 2})
    )
    assert 0 < small < big
    short = speech_tool.cost(speech_tool.args.model_validate({"prompt": "hi"}))
    long = speech_tool.cost(speech_tool.args.model_validate({"prompt": "hi " * 1000}))
    assert 0 < short < long
