"""Reading a prompt into a plan (style, tempo, key, meter, instruments; explicit values win over
what the words suggest), and the song form (sections and their energy) for a length in bars.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sogni_intelligence.media.music.harmony import parse_keyscale
from sogni_intelligence.media.music.styles import DEFAULT_STYLE, INSTRUMENT_WORDS, STYLES, Style

_BASS_WORDS = {"upright bass": 32, "double bass": 32, "synth bass": 38, "bass guitar": 33}
_NO_DRUMS = re.compile(r"\b(no|without)\s+(drums|percussion|beat)\b|\bdrumless\b|\bunplugged\b")
_DRUMS = re.compile(r"\b(drums?|percussion|beats?|drumming)\b")
_SLOW = re.compile(r"\b(slow|slower|downtempo|laid[- ]back|lazy)\b")
_FAST = re.compile(r"\b(fast|faster|uptempo|up-tempo|frantic|driving|rapid)\b")
_BPM_IN_PROMPT = re.compile(r"\b(\d{2,3})\s*bpm\b")
_METER_IN_PROMPT = re.compile(r"\b([2346])\s*/\s*([48])\b")
_KEY_IN_PROMPT = re.compile(r"\bin\s+([a-g])\s*([#b]|sharp|flat)?\s*(major|minor)\b", re.IGNORECASE)


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
