"""Instrumental music without a neural model: the prompt picks a style, the seed writes a song.

The prompt's words choose a style (tempo range, mode, instruments, groove; `styles`, `prompt`);
explicit `bpm`, `keyscale` and `timesig` override what the words suggest. The seed then decides
the exact tempo, key, chord progressions, melody and fills (`harmony`, `drums`, `composition`),
so the same request always gives the same file. The piece is written as General MIDI with
pretty_midi, rendered by the FluidSynth command line with the GM soundfont, and cut by ffmpeg
to exactly the requested length (`render`).
"""

from sogni_intelligence.media.music.composition import compose
from sogni_intelligence.media.music.harmony import parse_keyscale
from sogni_intelligence.media.music.prompt import plan_sections
from sogni_intelligence.media.music.render import MusicUnavailable, codec_args, render

__all__ = ["MusicUnavailable", "codec_args", "compose", "parse_keyscale", "plan_sections", "render"]
