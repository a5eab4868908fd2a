"""Instrumental music without a neural model: the prompt picks a style, the seed writes a song.

The prompt's words choose a style (tempo range, mode, instruments, groove); explicit `bpm`,
`keyscale` and `timesig` override what the words suggest. The seed then decides the exact
tempo, key, chord progressions, melody and fills, so the same request always gives the same
file. The piece is written as General MIDI with pretty_midi, rendered by the FluidSynth command
line with the GM soundfont, and cut by ffmpeg to exactly the requested length.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pretty_midi

from sogni_intelligence.media.ffmpeg import ffmpeg, run_process

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


# --------------------------------------------------------------------------------------------
# Styles: what the words of a prompt mean musically.


@dataclass(frozen=True)
class Style:
    name: str
    words: tuple[str, ...]
    tempo: tuple[int, int]
    mode: str  # "major", "minor" or "either"
    lead: int  # GM programs (0-based)
    comp: int
    bass: int
    pad: int | None
    drums: str  # a groove name from _GROOVES, or "none"
    comp_pattern: str  # sustain | arpeggio | pulse | strum | stabs | jazz
    bass_pattern: str  # hold | root_fifth | eighths | offbeat | walking | syncopated
    energy: float  # 0..1: melody density and loudness
    sevenths: bool = False
    swing: bool = False
    bars_per_chord: int = 1


STYLES: tuple[Style, ...] = (
    Style(
        "calm",
        (
            "calm",
            "relax",
            "relaxing",
            "peaceful",
            "gentle",
            "soft",
            "ambient",
            "sleep",
            "meditation",
            "serene",
            "quiet",
            "dreamy",
            "tranquil",
            "soothing",
            "lullaby",
            "spa",
        ),
        (62, 80),
        "major",
        0,
        0,
        32,
        89,
        "none",
        "arpeggio",
        "hold",
        0.3,
        bars_per_chord=2,
    ),
    Style(
        "lofi",
        ("lofi", "lo-fi", "chill", "chillhop", "study", "mellow", "coffee", "cozy"),
        (70, 88),
        "either",
        4,
        4,
        33,
        None,
        "lofi",
        "sustain",
        "syncopated",
        0.4,
        sevenths=True,
        swing=True,
    ),
    Style(
        "rock",
        (
            "rock",
            "energetic",
            "metal",
            "punk",
            "grunge",
            "heavy",
            "powerful",
            "loud",
            "aggressive",
            "intense",
            "riff",
            "anthem",
        ),
        (128, 160),
        "either",
        29,
        30,
        34,
        None,
        "rock",
        "pulse",
        "eighths",
        0.85,
    ),
    Style(
        "electronic",
        (
            "electronic",
            "edm",
            "dance",
            "techno",
            "house",
            "trance",
            "club",
            "synthwave",
            "rave",
            "disco",
            "electro",
            "dubstep",
        ),
        (120, 130),
        "minor",
        80,
        81,
        38,
        88,
        "four",
        "stabs",
        "offbeat",
        0.75,
    ),
    Style(
        "hiphop",
        ("hip hop", "hip-hop", "hiphop", "rap", "trap", "boom bap", "groove", "funky", "funk"),
        (84, 96),
        "minor",
        11,
        4,
        38,
        None,
        "hiphop",
        "sustain",
        "syncopated",
        0.55,
        sevenths=True,
    ),
    Style(
        "jazz",
        ("jazz", "jazzy", "swing", "lounge", "bebop", "smooth", "blues", "bluesy", "noir"),
        (100, 140),
        "major",
        65,
        0,
        32,
        None,
        "jazz",
        "jazz",
        "walking",
        0.6,
        sevenths=True,
        swing=True,
    ),
    Style(
        "cinematic",
        (
            "epic",
            "cinematic",
            "orchestral",
            "orchestra",
            "trailer",
            "film",
            "score",
            "heroic",
            "battle",
            "adventure",
            "dramatic",
            "majestic",
            "triumphant",
        ),
        (84, 108),
        "minor",
        60,
        48,
        43,
        52,
        "cinematic",
        "sustain",
        "root_fifth",
        0.7,
        bars_per_chord=2,
    ),
    Style(
        "sad",
        (
            "sad",
            "melancholy",
            "melancholic",
            "somber",
            "sombre",
            "sorrow",
            "lonely",
            "dark",
            "emotional",
            "nostalgic",
            "rain",
            "rainy",
            "tragic",
            "grief",
        ),
        (60, 76),
        "minor",
        40,
        0,
        32,
        48,
        "none",
        "arpeggio",
        "hold",
        0.35,
        bars_per_chord=2,
    ),
    Style(
        "folk",
        ("folk", "acoustic", "country", "campfire", "rustic", "bluegrass", "celtic", "western"),
        (92, 116),
        "major",
        40,
        25,
        32,
        None,
        "soft",
        "strum",
        "root_fifth",
        0.55,
    ),
    Style(
        "pop",
        (
            "pop",
            "happy",
            "upbeat",
            "cheerful",
            "joyful",
            "sunny",
            "bright",
            "fun",
            "summer",
            "uplifting",
            "playful",
            "catchy",
        ),
        (108, 124),
        "major",
        1,
        25,
        33,
        None,
        "pop",
        "strum",
        "root_fifth",
        0.65,
    ),
)
DEFAULT_STYLE = "pop"

# Instruments a prompt may name; the first named leads, the second accompanies. Longer names are
# matched first so "electric piano" is not also read as "piano".
INSTRUMENT_WORDS: dict[str, int] = {
    "electric piano": 4,
    "rhodes": 4,
    "grand piano": 0,
    "piano": 0,
    "harpsichord": 6,
    "music box": 10,
    "celesta": 8,
    "glockenspiel": 9,
    "vibraphone": 11,
    "marimba": 12,
    "xylophone": 13,
    "bells": 14,
    "organ": 19,
    "accordion": 21,
    "harmonica": 22,
    "nylon guitar": 24,
    "classical guitar": 24,
    "acoustic guitar": 25,
    "electric guitar": 27,
    "distorted guitar": 30,
    "guitar": 25,
    "violin": 40,
    "fiddle": 40,
    "viola": 41,
    "cello": 42,
    "strings": 48,
    "harp": 46,
    "choir": 52,
    "trumpet": 56,
    "trombone": 57,
    "french horn": 60,
    "horn": 60,
    "brass": 61,
    "saxophone": 65,
    "sax": 65,
    "oboe": 68,
    "clarinet": 71,
    "flute": 73,
    "pan flute": 75,
    "ocarina": 79,
    "synthesizer": 81,
    "synth": 81,
    "sitar": 104,
    "banjo": 105,
    "koto": 107,
    "kalimba": 108,
    "steel drums": 114,
}
# Programs that belong in the low register rather than on the melody.
_BASS_WORDS = {"upright bass": 32, "double bass": 32, "synth bass": 38, "bass guitar": 33}
_NO_DRUMS = re.compile(r"\b(no|without)\s+(drums|percussion|beat)\b|\bdrumless\b|\bunplugged\b")
_DRUMS = re.compile(r"\b(drums?|percussion|beats?|drumming)\b")
_SLOW = re.compile(r"\b(slow|slower|downtempo|laid[- ]back|lazy)\b")
_FAST = re.compile(r"\b(fast|faster|uptempo|up-tempo|frantic|driving|rapid)\b")
_BPM_IN_PROMPT = re.compile(r"\b(\d{2,3})\s*bpm\b")
_METER_IN_PROMPT = re.compile(r"\b([2346])\s*/\s*([48])\b")
_KEY_IN_PROMPT = re.compile(r"\bin\s+([a-g])\s*([#b]|sharp|flat)?\s*(major|minor)\b", re.IGNORECASE)

# --------------------------------------------------------------------------------------------
# Keys and chords.

_NOTE_PC = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_FLAT_MAJOR = {5, 10, 3, 8, 1, 6}  # F Bb Eb Ab Db Gb
_FLAT_MINOR = {2, 7, 0, 5, 10, 3}  # D G C F Bb Eb
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
_KEYSCALE = re.compile(
    r"^\s*([a-g])\s*(#|♯|b|♭|sharp|flat)?\s*"
    r"(major|minor|maj|min|m|dur|moll|ionian|aeolian)?\s*$",
    re.IGNORECASE,
)

# Progressions as scale degrees (0 = tonic), one chord per `bars_per_chord` bars.
PROGRESSIONS = {
    "major": {
        "verse": ((0, 5, 3, 4), (0, 3, 4, 3), (0, 4, 5, 3), (5, 3, 0, 4), (0, 3, 5, 4)),
        "chorus": ((3, 4, 0, 5), (0, 4, 5, 3), (3, 0, 4, 5), (0, 3, 4, 4)),
        "bridge": ((5, 3, 0, 4), (3, 4, 2, 5), (1, 4, 0, 5), (5, 4, 3, 4)),
    },
    "minor": {
        "verse": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 5, 4)),
        "chorus": ((5, 2, 6, 0), (0, 5, 2, 6), (3, 5, 6, 0), (5, 6, 0, 0)),
        "bridge": ((3, 4, 5, 6), (5, 3, 0, 6), (2, 6, 3, 4)),
    },
}


def parse_keyscale(text: str) -> tuple[int, str]:
    """'C major', 'A minor', 'F# minor', 'Bb', 'Am' -> (pitch class, mode). ValueError if not."""
    match = _KEYSCALE.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a key such as 'C major' or 'A minor'")
    letter, accidental, quality = match.groups()
    pc = _NOTE_PC[letter.lower()]
    if accidental:
        pc += 1 if accidental.lower() in ("#", "♯", "sharp") else -1
    # A lone "m" means minor ("Am"); a capital "M" is the major shorthand ("AM").
    quality = "major" if not quality or quality == "M" else quality.lower()
    mode = "minor" if quality in ("minor", "min", "m", "moll", "aeolian") else "major"
    return pc % 12, mode


def key_name(tonic: int, mode: str) -> str:
    return f"{_pitch_names(tonic, mode)[tonic]} {mode}"


def _pitch_names(tonic: int, mode: str) -> tuple[str, ...]:
    flats = tonic in (_FLAT_MAJOR if mode == "major" else _FLAT_MINOR)
    return _FLAT_NAMES if flats else _SHARP_NAMES


def _chord_tones(degree: int, scale: tuple[int, ...], sevenths: bool) -> list[int]:
    """Semitone offsets from the tonic of the diatonic chord on `degree`."""
    count = 4 if sevenths else 3
    tones = []
    for k in range(count):
        step = degree + 2 * k
        tones.append(scale[step % 7] + 12 * (step // 7))
    return tones


def _chord_name(degree: int, tonic: int, mode: str, sevenths: bool) -> str:
    tones = _chord_tones(degree, SCALES[mode], sevenths)
    root = (tonic + tones[0]) % 12
    third, fifth = tones[1] - tones[0], tones[2] - tones[0]
    quality = {(4, 7): "", (3, 7): "m", (3, 6): "dim", (4, 8): "aug"}.get((third, fifth), "")
    if sevenths:
        seventh = tones[3] - tones[0]
        quality = {
            ("", 11): "maj7",
            ("", 10): "7",
            ("m", 10): "m7",
            ("m", 11): "m(maj7)",
            ("dim", 10): "m7b5",
            ("dim", 9): "dim7",
        }.get((quality, seventh), quality + "7")
    return _pitch_names(tonic, mode)[root] + quality


# --------------------------------------------------------------------------------------------
# Reading the prompt.


@dataclass
class Plan:
    """Everything the prompt and the explicit arguments decided, before the seed is used."""

    style: Style
    lead: int
    comp: int
    bass: int
    pad: int | None
    drums: str
    tempo_factor: float = 1.0
    bpm: int | None = None
    tonic: int | None = None
    mode: str | None = None
    beats: int = 4  # numerator of the time signature
    matched_words: list[str] = field(default_factory=list)


def _find_instruments(text: str) -> list[int]:
    found: list[tuple[int, int]] = []
    taken: list[tuple[int, int]] = []
    for word in sorted(INSTRUMENT_WORDS, key=len, reverse=True):
        for match in re.finditer(rf"\b{re.escape(word)}s?\b", text):
            span = match.span()
            if any(span[0] < end and start < span[1] for start, end in taken):
                continue
            taken.append(span)
            found.append((span[0], INSTRUMENT_WORDS[word]))
    ordered: list[int] = []
    for _, program in sorted(found):
        if program not in ordered:
            ordered.append(program)
    return ordered


def read_prompt(
    prompt: str, bpm: int | None = None, keyscale: str | None = None, timesig: int | None = None
) -> Plan:
    """Map the words of a prompt (and explicit overrides) to a style and its instruments."""
    text = prompt.lower()
    scores: list[tuple[int, int, Style]] = []
    matched: list[str] = []
    for order, style in enumerate(STYLES):
        hits = [w for w in style.words if re.search(rf"\b{re.escape(w)}\b", text)]
        matched.extend(hits)
        if hits:
            scores.append((len(hits), -order, style))
    style = (
        max(scores, key=lambda s: (s[0], s[1]))[2]
        if scores
        else next(s for s in STYLES if s.name == DEFAULT_STYLE)
    )
    plan = Plan(style, style.lead, style.comp, style.bass, style.pad, style.drums)
    plan.matched_words = matched

    named = _find_instruments(re.sub("|".join(_BASS_WORDS), " ", text))
    if style.name == "rock":  # a rock "guitar" is an electric one
        named = [29 if p == 25 else p for p in named]
    if named:
        plan.lead = named[0]
        if len(named) > 1:
            plan.comp = named[1]
        if len(named) > 2 and plan.pad is not None:
            plan.pad = named[2]
    for word, program in _BASS_WORDS.items():
        if word in text:
            plan.bass = program
    if _NO_DRUMS.search(text):
        plan.drums = "none"
    elif plan.drums == "none" and _DRUMS.search(text):
        plan.drums = "soft" if style.energy < 0.5 else "pop"

    if _SLOW.search(text):
        plan.tempo_factor = 0.8
    elif _FAST.search(text):
        plan.tempo_factor = 1.2
    if re.search(r"\bwaltz\b", text):
        plan.beats = 3

    bpm_word = _BPM_IN_PROMPT.search(text)
    if bpm_word and 30 <= int(bpm_word.group(1)) <= 300:
        plan.bpm = int(bpm_word.group(1))
    meter_word = _METER_IN_PROMPT.search(text)
    if meter_word:
        top, bottom = int(meter_word.group(1)), int(meter_word.group(2))
        plan.beats = 6 if (top, bottom) == (6, 8) else top if bottom == 4 else plan.beats
    key_word = _KEY_IN_PROMPT.search(prompt)
    if key_word:
        letter, accidental, quality = key_word.groups()
        accidental = {"sharp": "#", "flat": "b"}.get((accidental or "").lower(), accidental or "")
        plan.tonic, plan.mode = parse_keyscale(f"{letter}{accidental} {quality}")
    elif re.search(r"\bminor\b", text):
        plan.mode = "minor"
    elif re.search(r"\bmajor\b", text):
        plan.mode = "major"

    if bpm is not None:
        plan.bpm = bpm
    if keyscale:
        plan.tonic, plan.mode = parse_keyscale(keyscale)
    if timesig is not None:
        plan.beats = timesig
    return plan


# --------------------------------------------------------------------------------------------
# Song form.

SECTION_ENERGY = {"intro": 0.55, "verse": 0.75, "chorus": 1.0, "bridge": 0.7, "outro": 0.55}


def plan_sections(total_bars: int) -> list[tuple[str, int]]:
    """Intro, verses and choruses (a bridge once the song is long enough) and an outro."""
    if total_bars <= 2:
        return [("verse", total_bars)]
    edge = min(4, max(1, total_bars // 8))
    body = total_bars - 2 * edge
    length = 8 if body >= 16 else 4
    order = ["verse", "chorus", "verse", "chorus", "bridge", "chorus"]
    sections: list[tuple[str, int]] = [("intro", edge)]
    i = 0
    while body > 0:
        name = order[i % len(order)]
        take = min(length, body)
        if body - take < length // 2:  # do not leave a stub: absorb it
            take = body
        sections.append((name, take))
        body -= take
        i += 1
    sections.append(("outro", edge))
    return sections


# --------------------------------------------------------------------------------------------
# Drums (General MIDI percussion, channel 10).

KICK, ACOUSTIC_KICK, SIDESTICK, SNARE, CLAP = 36, 35, 37, 38, 39
CLOSED_HAT, PEDAL_HAT, OPEN_HAT, CRASH, RIDE = 42, 44, 46, 49, 51
LOW_TOM, MID_TOM, HIGH_TOM = 45, 47, 50


def _meter(beats: int) -> tuple[float, list[float], list[float]]:
    """(bar length in quarter notes, strong beats, back beats) for a numerator."""
    if beats == 6:  # 6/8: two dotted-quarter pulses
        return 3.0, [0.0], [1.5]
    if beats == 3:
        return 3.0, [0.0], [1.0, 2.0]
    if beats == 2:
        return 2.0, [0.0], [1.0]
    return 4.0, [0.0, 2.0], [1.0, 3.0]


def _grid(length: float, step: float) -> list[float]:
    return [i * step for i in range(round(length / step))]


def drum_bar(
    groove: str, beats: int, rng: random.Random, light: bool = False, fill: bool = False
) -> list[tuple[int, float, int]]:
    """(note, beat position, velocity) hits of one bar in a groove."""
    length, strong, back = _meter(beats)
    hits: list[tuple[int, float, int]] = []
    if groove == "none":
        return hits
    if groove in ("rock", "pop"):
        loud = groove == "rock"
        for pos in _grid(length, 0.5):
            hits.append((CLOSED_HAT, pos, (84 if pos % 1 == 0 else 62) if loud else 60))
        if not light:
            for pos in strong:
                hits.append((KICK, pos, 100 if loud else 88))
            if beats == 4 and rng.random() < 0.5:
                hits.append((KICK, 2.5, 80))
            for pos in back:
                hits.append((SNARE, pos, 98 if loud else 82))
    elif groove == "four":
        pulse = 1.5 if beats == 6 else 1.0
        for pos in _grid(length, 0.25):
            hits.append((CLOSED_HAT, pos, 46 if pos % 0.5 else 58))
        if not light:
            for pos in _grid(length, pulse):
                hits.append((KICK, pos, 104))
                hits.append((OPEN_HAT, pos + pulse / 2, 66))
            for pos in back:
                hits.append((CLAP, pos, 88))
    elif groove in ("hiphop", "lofi"):
        soft = groove == "lofi"
        step = 0.5 if soft else 0.25
        for pos in _grid(length, step):
            hits.append((CLOSED_HAT, pos, (52 if soft else 60) + (8 if pos % 1 == 0 else 0)))
        if not light:
            hits.append((KICK, 0.0, 96 if not soft else 80))
            if length >= 4:
                hits.append((KICK, rng.choice((0.75, 1.75, 2.5)), 84 if not soft else 70))
                hits.append((KICK, 2.25 if rng.random() < 0.5 else 2.5, 86 if not soft else 72))
            for pos in back:
                hits.append((SIDESTICK if soft else SNARE, pos, 90 if not soft else 70))
    elif groove == "jazz":
        for beat in range(int(length)):
            hits.append((RIDE, float(beat), 72))
            if beat % 2 == 1:
                hits.append((RIDE, beat + 0.5, 58))  # swung later
        for pos in back:
            hits.append((PEDAL_HAT, pos, 60))
        if not light:
            hits.append((ACOUSTIC_KICK, 0.0, 52))
    elif groove == "soft":
        for pos in _grid(length, 1.0):
            hits.append((CLOSED_HAT, pos, 50))
        if not light:
            hits.append((KICK, 0.0, 72))
            for pos in back:
                hits.append((SIDESTICK, pos, 64))
    elif groove == "cinematic":
        if not light:
            for pos in strong:
                hits.append((ACOUSTIC_KICK, pos, 96))
            hits.append((LOW_TOM, length - 1.0, 84))
            hits.append((LOW_TOM, length - 0.5, 90))
        else:
            hits.append((ACOUSTIC_KICK, 0.0, 70))
    if fill and not light and groove not in ("jazz", "soft"):
        start = length - 1.0
        hits = [h for h in hits if h[1] < start]
        toms = (HIGH_TOM, HIGH_TOM, MID_TOM, LOW_TOM)
        for i, pos in enumerate(_grid(1.0, 0.25)):
            note = SNARE if groove in ("four", "hiphop", "lofi") else toms[i]
            hits.append((note, start + pos, 70 + 8 * i))
    return hits


# --------------------------------------------------------------------------------------------
# Composition.


@dataclass
class Composition:
    midi: pretty_midi.PrettyMIDI
    summary: dict[str, Any]


class _Writer:
    """Places notes on a beat grid, with swing and a little seeded humanising."""

    def __init__(self, bpm: float, swing: bool, rng: random.Random) -> None:
        self.beat_s = 60.0 / bpm
        self.swing = swing
        self.rng = rng

    def time(self, beat: float) -> float:
        if self.swing and abs((beat % 1.0) - 0.5) < 1e-6:
            beat += 1.0 / 6.0  # the off-beat eighth lands on the third triplet
        return beat * self.beat_s

    def note(
        self,
        instrument: pretty_midi.Instrument,
        pitch: int,
        beat: float,
        length: float,
        velocity: float,
        jitter: bool = True,
    ) -> None:
        start = self.time(beat)
        end = self.time(beat + length) if length > 0 else start + 0.1
        if jitter:
            start += self.rng.uniform(-0.006, 0.006)
            velocity += self.rng.uniform(-6, 6)
        start = max(0.0, start)
        end = max(start + 0.03, end - 0.01)
        vel = int(max(1, min(127, round(velocity))))
        instrument.notes.append(pretty_midi.Note(vel, int(pitch), start, end))


def _rhythm(rng: random.Random, length: float, density: float) -> list[tuple[float, float]]:
    """Onsets and lengths (in beats) of one melody bar: always an onset on the downbeat."""
    onsets = [0.0]
    for pos in _grid(length, 0.5)[1:]:
        on_beat = pos % 1.0 == 0
        chance = density + (0.2 if on_beat else -0.15)
        if rng.random() < chance:
            onsets.append(pos)
    notes = []
    for i, onset in enumerate(onsets):
        end = onsets[i + 1] if i + 1 < len(onsets) else length
        notes.append((onset, min(end - onset, 2.0)))
    return notes


def _phrase(
    rng: random.Random,
    chords: list[int],
    length: float,
    density: float,
    center: int,
) -> list[tuple[int, float, float, int]]:
    """A melody over one pass of a progression: (bar, onset, length, scale step)."""
    notes: list[tuple[int, float, float, int]] = []
    step = center
    low, high = center - 4, center + 6
    for bar, degree in enumerate(chords):
        tones = {degree % 7, (degree + 2) % 7, (degree + 4) % 7}
        rhythm = _rhythm(rng, length, density)
        for i, (onset, dur) in enumerate(rhythm):
            if i == 0 or onset % 1.0 == 0:
                candidates = [s for s in range(low, high + 1) if s % 7 in tones]
                candidates.sort(key=lambda s: (abs(s - step), rng.random()))
                step = candidates[0] if rng.random() < 0.7 else rng.choice(candidates[:3])
            else:
                step = min(high, max(low, step + rng.choice((-2, -1, -1, 1, 1, 2))))
            notes.append((bar, onset, dur, step))
    if notes:  # end the phrase on the tonic, held
        bar, onset, _, last = notes[-1]
        tonic = min((s for s in range(low, high + 1) if s % 7 == 0), key=lambda s: abs(s - last))
        notes[-1] = (bar, onset, length - onset, tonic)
    return notes


def _pitch(root_midi: int, scale: tuple[int, ...], step: int) -> int:
    return root_midi + 12 * (step // 7) + scale[step % 7]


def compose(
    prompt: str,
    duration_s: float,
    seed: int,
    *,
    bpm: int | None = None,
    keyscale: str | None = None,
    timesig: int | None = None,
) -> Composition:
    """Write a piece at least `duration_s` long. Deterministic for the same arguments."""
    plan = read_prompt(prompt, bpm, keyscale, timesig)
    style = plan.style
    rng = random.Random(seed)

    low, high = style.tempo
    tempo = plan.bpm or max(30, min(300, round(rng.randint(low, high) * plan.tempo_factor)))
    mode = plan.mode or (rng.choice(("major", "minor")) if style.mode == "either" else style.mode)
    tonic = plan.tonic if plan.tonic is not None else rng.randrange(12)
    scale = SCALES[mode]
    beats = plan.beats
    bar_quarters, _, _ = _meter(beats)
    writer = _Writer(tempo, style.swing, rng)
    bar_s = bar_quarters * writer.beat_s
    total_bars = max(1, math.ceil(duration_s / bar_s - 1e-9))
    sections = plan_sections(total_bars)

    progressions = {
        name: list(rng.choice(PROGRESSIONS[mode][name])) for name in ("verse", "chorus", "bridge")
    }
    progressions["intro"] = progressions["verse"]
    progressions["outro"] = [*progressions["chorus"][:-1], 0]
    per_chord = style.bars_per_chord
    melody_center = {"verse": 4, "chorus": 7, "bridge": 5}
    phrases = {
        name: _phrase(
            rng,
            [d for d in progressions[name] for _ in range(per_chord)],
            bar_quarters,
            min(0.9, style.energy + (0.12 if name == "chorus" else 0.0)),
            melody_center[name],
        )
        for name in ("verse", "chorus", "bridge")
    }
    bass_choice = rng.random()

    midi = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=float(tempo))
    denominator = 8 if beats == 6 else 4
    midi.time_signature_changes.append(pretty_midi.TimeSignature(beats, denominator, 0.0))
    midi.key_signature_changes.append(
        pretty_midi.KeySignature(tonic + (12 if mode == "minor" else 0), 0.0)
    )
    lead = pretty_midi.Instrument(plan.lead, name="lead")
    comp = pretty_midi.Instrument(plan.comp, name="chords")
    bass = pretty_midi.Instrument(plan.bass, name="bass")
    pad = pretty_midi.Instrument(plan.pad, name="pad") if plan.pad is not None else None
    drums = pretty_midi.Instrument(0, is_drum=True, name="drums")

    lead_root = 60 + tonic - (12 if tonic > 6 else 0)
    comp_root = 48 + tonic
    bass_root = 36 + tonic - (12 if tonic > 7 else 0)
    vel_scale = 0.75 + 0.3 * style.energy

    section_rows: list[dict[str, Any]] = []
    bar = 0
    for index, (name, bars) in enumerate(sections):
        energy = SECTION_ENERGY[name]
        progression = progressions[name]
        chords_here: list[str] = []
        for i in range(bars):
            degree = progression[(i // per_chord) % len(progression)]
            last_bar = index == len(sections) - 1 and i == bars - 1
            if last_bar:
                degree = 0
            chord = _chord_name(degree, tonic, mode, style.sevenths)
            if i % per_chord == 0 or last_bar:
                chords_here.append(chord)
            start = (bar + i) * bar_quarters
            tones = _chord_tones(degree, scale, style.sevenths)
            voicing = sorted(t + comp_root + (12 if t + comp_root < 55 else 0) for t in tones)
            velocity = 78 * energy * vel_scale
            if last_bar:
                for p in voicing:
                    writer.note(comp, p, start, bar_quarters, velocity, jitter=False)
                if pad is not None:
                    for p in voicing:
                        writer.note(pad, p - 12, start, bar_quarters, 0.8 * velocity, False)
                writer.note(bass, bass_root + tones[0], start, bar_quarters, 90, jitter=False)
                if plan.drums != "none":
                    writer.note(drums, CRASH, start, 1.0, 90, jitter=False)
                continue
            _comp_bar(writer, comp, style.comp_pattern, voicing, start, bar_quarters, velocity)
            if pad is not None and i % per_chord == 0:
                for p in voicing:
                    length = bar_quarters * min(per_chord, bars - i)
                    writer.note(pad, p - 12 if p > 64 else p, start, length, 0.7 * velocity)
            next_degree = progression[((i + 1) // per_chord) % len(progression)]
            _bass_bar(
                writer,
                bass,
                style.bass_pattern if bass_choice < 0.8 else "root_fifth",
                bass_root,
                tones,
                bass_root + _chord_tones(next_degree, scale, False)[0],
                start,
                bar_quarters,
                (70 + 30 * style.energy) * energy,
            )
            if plan.drums != "none":
                light = name in ("intro", "outro")
                fill = i == bars - 1 and name != "outro" and bars >= 4
                for note, pos, vel in drum_bar(plan.drums, beats, rng, light=light, fill=fill):
                    writer.note(drums, note, start + pos, 0.25, vel * (0.7 + 0.3 * energy))
                if i == 0 and name in ("chorus", "bridge"):
                    writer.note(drums, CRASH, start, 1.0, 96)
            if name in phrases:
                phrase = phrases[name]
                phrase_bars = len(progression) * per_chord
                for p_bar, onset, length, step in phrase:
                    if p_bar == i % phrase_bars:
                        pitch = _pitch(lead_root, scale, step)
                        vel = (84 + 20 * style.energy) * (0.8 + 0.2 * energy)
                        writer.note(lead, pitch, start + onset, length * 0.92, vel)
        start_s = bar * bar_s
        end_s = min((bar + bars) * bar_s, duration_s)
        section_rows.append(
            {
                "name": name,
                "bars": bars,
                "start_seconds": round(start_s, 2),
                "end_seconds": round(end_s, 2),
                "chords": chords_here,
            }
        )
        bar += bars

    parts = [lead, comp, bass] + ([pad] if pad is not None else [])
    if plan.drums != "none":
        parts.append(drums)
    for part in parts:
        if part.notes:
            midi.instruments.append(part)

    instruments = [
        {"role": part.name, "program": part.program, "name": _instrument_name(part)}
        for part in midi.instruments
    ]
    summary = {
        "style": style.name,
        "tempo_bpm": tempo,
        "key": key_name(tonic, mode),
        "time_signature": f"{beats}/{denominator}",
        "bars": total_bars,
        "sections": section_rows,
        "chord_progressions": {
            name: [_chord_name(d, tonic, mode, style.sevenths) for d in progressions[name]]
            for name in ("verse", "chorus", "bridge")
        },
        "instruments": instruments,
        "drums": plan.drums if plan.drums != "none" else None,
        "swing": style.swing,
        "seed": seed,
    }
    return Composition(midi, summary)


def _instrument_name(part: pretty_midi.Instrument) -> str:
    if part.is_drum:
        return "Drum kit (General MIDI percussion)"
    return pretty_midi.program_to_instrument_name(part.program)


def _comp_bar(
    writer: _Writer,
    part: pretty_midi.Instrument,
    pattern: str,
    voicing: list[int],
    start: float,
    length: float,
    velocity: float,
) -> None:
    rng = writer.rng
    if pattern == "arpeggio":
        cycle = [*voicing, voicing[0] + 12, *reversed(voicing[1:])]
        for k, pos in enumerate(_grid(length, 0.5)):
            writer.note(part, cycle[k % len(cycle)], start + pos, 0.75, velocity * 0.85)
    elif pattern == "pulse":  # power chords on every eighth
        power = [voicing[0], voicing[0] + 7, voicing[0] + 12]
        for pos in _grid(length, 0.5):
            accent = 1.0 if pos % 1 == 0 else 0.85
            for p in power:
                writer.note(part, p - 12, start + pos, 0.42, velocity * accent)
    elif pattern == "strum":
        hits = [0.0, 1.0, 1.5, 2.5, 3.0] if length >= 4 else [*_grid(length, 1.0), length - 0.5]
        for pos in sorted(set(hits)):
            if pos >= length:
                continue
            for k, p in enumerate(voicing):
                writer.note(part, p, start + pos + 0.03 * k, 0.9, velocity * 0.9)
    elif pattern == "stabs":
        for pos in _grid(length, 1.0):
            for p in voicing:
                writer.note(part, p + 12, start + pos + 0.5, 0.3, velocity * 0.8)
    elif pattern == "jazz":
        choices = [pos for pos in _grid(length, 0.5)]
        picks = sorted(rng.sample(choices, k=min(len(choices), rng.randint(2, 3))))
        for pos in picks:
            for p in voicing:
                writer.note(part, p, start + pos, 0.6, velocity * 0.8)
    else:  # sustain: the whole bar
        for p in voicing:
            writer.note(part, p, start, length * 0.98, velocity * 0.8)


def _bass_bar(
    writer: _Writer,
    part: pretty_midi.Instrument,
    pattern: str,
    root_midi: int,
    tones: list[int],
    next_root: int,
    start: float,
    length: float,
    velocity: float,
) -> None:
    root = root_midi + tones[0]
    fifth = root_midi + tones[2]
    if pattern == "hold":
        writer.note(part, root, start, length * 0.98, velocity)
    elif pattern == "eighths":
        for pos in _grid(length, 0.5):
            writer.note(part, root, start + pos, 0.45, velocity * (1.0 if pos % 1 == 0 else 0.85))
    elif pattern == "offbeat":
        for pos in _grid(length, 1.0):
            writer.note(part, root, start + pos + 0.5, 0.4, velocity)
    elif pattern == "walking":
        line = [root, root_midi + tones[1], fifth, root_midi + tones[-1]]
        for k, pos in enumerate(_grid(length, 1.0)):
            pitch = line[k % len(line)]
            if pos == length - 1.0 and length > 1:  # approach the next root by a semitone
                pitch = next_root + (1 if writer.rng.random() < 0.5 else -1)
            writer.note(part, pitch, start + pos, 0.9, velocity)
    elif pattern == "syncopated":
        for pos, pitch in ((0.0, root), (1.5, root), (2.5, fifth), (3.0, root)):
            if pos < length:
                writer.note(part, pitch, start + pos, 0.5 if pos else 1.2, velocity)
    else:  # root_fifth
        writer.note(part, root, start, length / 2 * 0.95, velocity)
        writer.note(part, fifth, start + length / 2, length / 2 * 0.95, velocity * 0.9)


# --------------------------------------------------------------------------------------------
# Rendering.


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
    composition: Composition, duration_s: float, fmt: str, workdir: Path, name: str = "song"
) -> Path:
    """MIDI -> FluidSynth WAV -> exact-length `fmt` file in `workdir`."""
    font, synth = soundfont(), fluidsynth_exe()
    midi_path = workdir / f"{name}.mid"
    raw_path = workdir / f"{name}.raw.wav"
    out_path = workdir / f"{name}.{fmt}"
    await asyncio.to_thread(composition.midi.write, str(midi_path))
    timeout = 60 + duration_s
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
    samples = round(duration_s * SAMPLE_RATE)
    fade = min(3.0, max(0.5, duration_s * 0.08))
    chain = (
        f"alimiter=limit=0.9:level=disabled,"
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
        timeout_s=timeout,
    )
    raw_path.unlink(missing_ok=True)
    return out_path
