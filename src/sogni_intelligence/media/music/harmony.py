"""Keys, scales, chord progressions and chord names."""

from __future__ import annotations

import re

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


def chord_tones(degree: int, scale: tuple[int, ...], sevenths: bool) -> list[int]:
    """Semitone offsets from the tonic of the diatonic chord on `degree`."""
    count = 4 if sevenths else 3
    tones = []
    for k in range(count):
        step = degree + 2 * k
        tones.append(scale[step % 7] + 12 * (step // 7))
    return tones


def chord_name(degree: int, tonic: int, mode: str, sevenths: bool) -> str:
    tones = chord_tones(degree, SCALES[mode], sevenths)
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
