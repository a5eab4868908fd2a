from pathlib import Path

import pytest

from sogni_intelligence.agent.repetition import RepetitionGuard

README = Path(__file__).resolve().parents[2] / "README.md"


def kept(text: str, size: int, guard: RepetitionGuard | None = None) -> str | None:
    """Feed `text` in pieces of `size` characters: what is kept when the guard cuts, or None
    when it never does."""
    guard = guard or RepetitionGuard()
    out = ""
    for start in range(0, len(text), size):
        piece = text[start : start + size]
        keep = guard.feed(piece)
        if keep is not None:
            assert 0 <= keep <= len(piece)
            return out + piece[:keep]
        out += piece
    return None


SIZES = pytest.mark.parametrize("size", [1, 3, 7, 10_000])


@SIZES
def test_a_repeated_sentence_is_cut_after_a_whole_sentence(size: int) -> None:
    text = "Sure. " + "I'm not sure how to help, but I'm here to help. " * 40
    result = kept(text, size)
    assert result is not None and result.startswith("Sure. I'm not sure")
    assert result.endswith("to help. ")
    # Past the 200 characters and four repetitions that tell a loop, up to the next sentence.
    assert 200 <= len(result) < 200 + 49
    assert result == kept(text, 1)  # the same cut however the text arrives


@SIZES
def test_repeated_lines_are_cut_after_a_line(size: int) -> None:
    text = "Here you go:\n" + "# Hello World\n\n" * 40
    result = kept(text, size)
    assert result is not None and result.endswith("World\n\n")
    assert result.count("# Hello World") == (len(result) - len("Here you go:\n")) // 15


@SIZES
def test_a_repeated_word_is_cut_after_a_word_and_a_spaceless_run_where_it_stands(
    size: int,
) -> None:
    words = kept("Ok: " + "LA " * 300, size)
    assert words is not None and words.endswith("LA LA ") and len(words) < 210
    letters = kept("a" * 1000, size)
    assert letters == "a" * 200


def test_the_cut_waits_for_the_end_of_the_repetition_being_written() -> None:
    guard = RepetitionGuard()
    sentence = "We will see. "
    text = sentence * 15 + "We"  # 197 characters: not yet a loop
    assert guard.feed(text) is None
    assert guard.feed(" will") is None  # a loop from here on, but mid-sentence
    assert guard.feed(" s") is None
    assert guard.feed("ee. We will") == len("ee. ")


@pytest.mark.parametrize(
    "text",
    [
        README.read_text(),
        "[" + "0, " * 400 + "0]",  # numbers
        "| --- " * 300,  # a table rule
        "-" * 2000,
        "\n" * 500,
        "Very " * 8 + "good. " + "Row, row, row your boat. " * 3,  # short repeats are words
    ],
    ids=["readme", "digits", "table", "rule", "blank", "short"],
)
def test_text_that_does_not_loop_is_never_cut(text: str) -> None:
    assert kept(text, 1) is None and kept(text, 5) is None


def test_thresholds_are_settings() -> None:
    text = "go " * 10
    assert kept(text, 1, RepetitionGuard(min_repeats=3, min_chars=6)) == "go go go "
    assert kept(text, 1, RepetitionGuard(min_repeats=20, min_chars=6)) is None
    # A period longer than max_period is not looked for (the token bound still ends it).
    paragraph = "A long paragraph that says one thing at length and then again. " * 10
    assert kept(paragraph, 1, RepetitionGuard(max_period=32)) is None
    assert kept(paragraph, 1, RepetitionGuard(max_period=64)) is not None
    with pytest.raises(ValueError):
        RepetitionGuard(min_repeats=1)
