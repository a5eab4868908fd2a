"""Writing the song: the seed decides the exact tempo, key, progressions, melody, comping, bass
and fills of the planned sections, as a pretty_midi score.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import pretty_midi

from sogni_intelligence.media.music.drums import CRASH, bar_meter, beat_grid, drum_bar
from sogni_intelligence.media.music.harmony import (
    PROGRESSIONS,
    SCALES,
    chord_name,
    chord_tones,
    key_name,
)
from sogni_intelligence.media.music.prompt import SECTION_ENERGY, plan_sections, read_prompt


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
    for pos in beat_grid(length, 0.5)[1:]:
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
    bar_quarters, _, _ = bar_meter(beats)
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
            chord = chord_name(degree, tonic, mode, style.sevenths)
            if i % per_chord == 0 or last_bar:
                chords_here.append(chord)
            start = (bar + i) * bar_quarters
            tones = chord_tones(degree, scale, style.sevenths)
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
                bass_root + chord_tones(next_degree, scale, False)[0],
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
            name: [chord_name(d, tonic, mode, style.sevenths) for d in progressions[name]]
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
        for k, pos in enumerate(beat_grid(length, 0.5)):
            writer.note(part, cycle[k % len(cycle)], start + pos, 0.75, velocity * 0.85)
    elif pattern == "pulse":  # power chords on every eighth
        power = [voicing[0], voicing[0] + 7, voicing[0] + 12]
        for pos in beat_grid(length, 0.5):
            accent = 1.0 if pos % 1 == 0 else 0.85
            for p in power:
                writer.note(part, p - 12, start + pos, 0.42, velocity * accent)
    elif pattern == "strum":
        hits = [0.0, 1.0, 1.5, 2.5, 3.0] if length >= 4 else [*beat_grid(length, 1.0), length - 0.5]
        for pos in sorted(set(hits)):
            if pos >= length:
                continue
            for k, p in enumerate(voicing):
                writer.note(part, p, start + pos + 0.03 * k, 0.9, velocity * 0.9)
    elif pattern == "stabs":
        for pos in beat_grid(length, 1.0):
            for p in voicing:
                writer.note(part, p + 12, start + pos + 0.5, 0.3, velocity * 0.8)
    elif pattern == "jazz":
        choices = [pos for pos in beat_grid(length, 0.5)]
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
        for pos in beat_grid(length, 0.5):
            writer.note(part, root, start + pos, 0.45, velocity * (1.0 if pos % 1 == 0 else 0.85))
    elif pattern == "offbeat":
        for pos in beat_grid(length, 1.0):
            writer.note(part, root, start + pos + 0.5, 0.4, velocity)
    elif pattern == "walking":
        line = [root, root_midi + tones[1], fifth, root_midi + tones[-1]]
        for k, pos in enumerate(beat_grid(length, 1.0)):
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
