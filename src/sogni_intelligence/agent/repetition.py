"""Spotting a generation that has fallen into a loop, while it streams.

Small models at low temperature can settle into saying the same thing over and over (one
word, one line, one paragraph) until the token limit. The guard reads the text piece by piece
and says when to stop, so the caller can end the generation there instead of paying for the
rest.

A loop is a tail of the text with period `p` (every character equals the one `p` before it)
that is at least `min_repeats` periods and `min_chars` characters long, where `p` is at most
`max_period` and the repeated stretch holds a letter (runs of digits, punctuation or blank
lines, as in tables, rules and number lists, never count). Once one is seen the text is cut
at the next natural end of a repetition: after a line, else after a sentence, else after a
word; a stretch with no space in it is cut where it stands.
"""

from __future__ import annotations


class RepetitionGuard:
    """Feed it the generated text in pieces; it says when to cut."""

    def __init__(self, min_repeats: int = 4, min_chars: int = 200, max_period: int = 500) -> None:
        if min_repeats < 2:
            raise ValueError("a loop is at least two repetitions")
        self.min_repeats = min_repeats
        self.min_chars = min_chars
        self.max_period = max_period
        # A loop not yet reported lies within this many characters of the end.
        self._window = max(min_repeats * max_period, min_chars) + max_period
        self._tail = ""
        self._seen = 0  # characters fed so far
        self._since_letter = 0  # characters since the last letter: a loop's period is longer
        self._cut_at: int | None = None  # where the text ends, once a loop is seen

    def feed(self, piece: str) -> int | None:
        """Take the next piece of text. None: go on. A number: keep that many characters of
        `piece` and stop (the text then ends after a whole repetition); feed no more."""
        before = self._seen
        self._seen += len(piece)
        letters = [i for i, c in enumerate(piece) if c.isalpha()]
        self._since_letter = (
            len(piece) - 1 - letters[-1] if letters else self._since_letter + len(piece)
        )
        if self._cut_at is None:
            text = self._tail + piece
            self._tail = text[-self._window :]
            period = self._period(text)
            if period is None:
                return None
            # Cut at the first natural end after the loop grew long enough to tell (within the
            # last piece when pieces are tokens), and not before this piece.
            told = self._seen - _run_length(text, period) + self._needed(period)
            point = max(before, told)
            self._cut_at = point + _next_end(text[-period:], point - (self._seen - period))
        if self._cut_at > self._seen:
            return None  # the repetition being written ends in a later piece
        return self._cut_at - before

    def _needed(self, period: int) -> int:
        """How long a tail of this period must be to count as a loop."""
        return max(self.min_repeats * period, self.min_chars)

    def _period(self, text: str) -> int | None:
        """The shortest period of a loop the text now ends with, if any. Candidates are where
        the text's last few characters occurred before (found by a fast search), since any
        loop tail repeats at least those, and far enough back to take in a letter."""
        probe = text[-min(16, max(1, self.min_chars // 2)) :]
        lowest = max(0, len(text) - len(probe) - self.max_period)
        highest = len(text) - 1 - self._since_letter
        at = text.rfind(probe, lowest, highest) if highest > 0 else -1
        while at >= 0:
            period = len(text) - len(probe) - at
            needed = self._needed(period)
            if needed > len(text):
                return None
            if text[-needed + period :] == text[-needed:-period]:
                return period
            at = text.rfind(probe, lowest, at + len(probe) - 1)
        return None


def _run_length(text: str, period: int) -> int:
    """How far back from its end the text keeps period `period`."""
    length = period
    while length < len(text) and text[-length - 1] == text[-length - 1 + period]:
        length += 1
    return length


def _next_end(unit: str, offset: int) -> int:
    """How many characters after `offset` into one repetition of `unit` (in text that goes on
    repeating it) the next end of the best kind comes."""
    period = len(unit)
    for natural in (
        lambda i: unit[i] == "\n" and unit[(i + 1) % period] != "\n",
        lambda i: unit[i].isspace() and unit[i - 1] in ".!?",
        lambda i: unit[i].isspace(),
    ):
        ends = [i + 1 for i in range(period) if natural(i)]
        if ends:
            return min((end - offset) % period for end in ends)
    return 0
