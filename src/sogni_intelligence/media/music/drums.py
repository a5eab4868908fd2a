"""Drum patterns in General MIDI percussion (channel 10), bar by bar, for each groove."""

from __future__ import annotations

import random

KICK, ACOUSTIC_KICK, SIDESTICK, SNARE, CLAP = 36, 35, 37, 38, 39
CLOSED_HAT, PEDAL_HAT, OPEN_HAT, CRASH, RIDE = 42, 44, 46, 49, 51
LOW_TOM, MID_TOM, HIGH_TOM = 45, 47, 50


def bar_meter(beats: int) -> tuple[float, list[float], list[float]]:
    """(bar length in quarter notes, strong beats, back beats) for a numerator."""
    if beats == 6:  # 6/8: two dotted-quarter pulses
        return 3.0, [0.0], [1.5]
    if beats == 3:
        return 3.0, [0.0], [1.0, 2.0]
    if beats == 2:
        return 2.0, [0.0], [1.0]
    return 4.0, [0.0, 2.0], [1.0, 3.0]


def beat_grid(length: float, step: float) -> list[float]:
    return [i * step for i in range(round(length / step))]


def drum_bar(
    groove: str, beats: int, rng: random.Random, light: bool = False, fill: bool = False
) -> list[tuple[int, float, int]]:
    """(note, beat position, velocity) hits of one bar in a groove."""
    length, strong, back = bar_meter(beats)
    hits: list[tuple[int, float, int]] = []
    if groove == "none":
        return hits
    if groove in ("rock", "pop"):
        loud = groove == "rock"
        for pos in beat_grid(length, 0.5):
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
        for pos in beat_grid(length, 0.25):
            hits.append((CLOSED_HAT, pos, 46 if pos % 0.5 else 58))
        if not light:
            for pos in beat_grid(length, pulse):
                hits.append((KICK, pos, 104))
                hits.append((OPEN_HAT, pos + pulse / 2, 66))
            for pos in back:
                hits.append((CLAP, pos, 88))
    elif groove in ("hiphop", "lofi"):
        soft = groove == "lofi"
        step = 0.5 if soft else 0.25
        for pos in beat_grid(length, step):
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
        for pos in beat_grid(length, 1.0):
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
        for i, pos in enumerate(beat_grid(1.0, 0.25)):
            note = SNARE if groove in ("four", "hiphop", "lofi") else toms[i]
            hits.append((note, start + pos, 70 + 8 * i))
    return hits
