"""Rendering a composition to audio: FluidSynth with the General MIDI soundfont writes the
samples, ffmpeg cuts them to the exact length and encodes the requested format.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from sogni_intelligence.media.ffmpeg import ffmpeg, run_process
from sogni_intelligence.media.music.composition import Composition
from sogni_intelligence.media.progress import Progress, file_growth, spanning, unheard

SAMPLE_RATE = 44100
SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)
FORMATS = ("wav", "mp3", "flac")


class MusicUnavailable(Exception):
    """FluidSynth or the General MIDI soundfont is missing on this machine."""


def soundfont() -> Path:
    for candidate in SOUNDFONTS:
        if Path(candidate).is_file():
            return Path(candidate)
    raise MusicUnavailable("the General MIDI soundfont is not installed (fluid-soundfont-gm)")


def fluidsynth_exe() -> str:
    found = shutil.which("fluidsynth")
    if found is None:
        raise MusicUnavailable("FluidSynth is not installed (Debian package fluidsynth)")
    return found


def codec_args(fmt: str, mp3_bitrate: str = "192k") -> list[str]:
    """Encoder options for wav, mp3 or flac; bit-exact so equal input gives equal bytes."""
    codec = {
        "wav": ["-c:a", "pcm_s16le"],
        "mp3": ["-c:a", "libmp3lame", "-b:a", mp3_bitrate],
        "flac": ["-c:a", "flac"],
    }[fmt]
    return [*codec, "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact"]


async def render(
    composition: Composition,
    duration_s: float,
    fmt: str,
    workdir: Path,
    name: str = "song",
    progress: Progress = unheard,
) -> Path:
    """MIDI -> FluidSynth WAV -> exact-length `fmt` file in `workdir`; the progress is the
    duration synthesized so far (the size of FluidSynth's stereo float output), then the
    encoder's."""
    font, synth = soundfont(), fluidsynth_exe()
    midi_path = workdir / f"{name}.mid"
    raw_path = workdir / f"{name}.raw.wav"
    out_path = workdir / f"{name}.{fmt}"
    await asyncio.to_thread(composition.midi.write, str(midi_path))
    timeout = 60 + duration_s
    expected_bytes = duration_s * SAMPLE_RATE * 2 * 4
    synthesizing = spanning(progress, 0.0, 0.8)
    async with file_growth(raw_path, expected_bytes, synthesizing, "synthesizing"):
        await run_process(
            synth,
            "-ni",
            "-q",
            "-g",
            "0.8",
            "-r",
            str(SAMPLE_RATE),
            "-O",
            "float",
            "-F",
            str(raw_path),
            str(font),
            str(midi_path),
            timeout_s=timeout,
        )
    await finish(raw_path, duration_s, fmt, out_path, spanning(progress, 0.8, 1.0))
    raw_path.unlink(missing_ok=True)
    return out_path


async def finish(
    raw_path: Path, duration_s: float, fmt: str, out_path: Path, progress: Progress | None = None
) -> None:
    """Pad or cut raw audio to exactly `duration_s` with a short fade-out, limit its peaks and
    encode it as 44.1 kHz stereo `fmt`, whatever rate and channels the raw file has."""
    samples = round(duration_s * SAMPLE_RATE)
    fade = min(3.0, max(0.5, duration_s * 0.08))
    chain = (
        f"aresample={SAMPLE_RATE},alimiter=limit=0.9:level=disabled,"
        f"apad=whole_len={samples},atrim=end_sample={samples},"
        f"afade=t=out:st={duration_s - fade:.3f}:d={fade:.3f}"
    )
    await ffmpeg(
        "-i",
        str(raw_path),
        "-af",
        chain,
        "-ar",
        str(SAMPLE_RATE),
        "-ac",
        "2",
        *codec_args(fmt),
        str(out_path),
        timeout_s=60 + duration_s,
        progress=progress,
        duration_s=duration_s,
    )
