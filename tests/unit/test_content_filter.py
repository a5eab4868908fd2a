"""The content filter's matcher: whole words and phrases after Unicode normalisation, common
obfuscations undone, and the term lists the settings choose."""

from __future__ import annotations

from pathlib import Path

import pytest

from sogni_intelligence.config import Settings
from sogni_intelligence.errors import ToolError
from sogni_intelligence.tools.content_filter import (
    ContentFilter,
    TermList,
    built_in_terms,
    read_terms,
    requested,
    text_fields,
    words,
)

TERMS = TermList.of(["purple elephant", "zorbix"])


@pytest.mark.parametrize(
    "text",
    [
        "a Purple Elephant at dawn",
        "PURPLE    ELEPHANT",
        "a purple\n\telephant",
        "púrplé éléphant",  # diacritics
        "ｐｕｒｐｌｅ ｅｌｅｐｈａｎｔ",  # full-width forms
        "purple\u200belephant",  # a zero-width space inside the phrase
        "purple-elephant, purple_elephant",
        "purpleelephant",  # a phrase written as one word
        "p u r p l e elephant",  # letters spelled out one by one
        "purpl3 3l3phant",  # digits for letters
        "two purple elephants",  # a plural
        "z0rb!x? no: zorbix!",
        "Z O R B I X",
        "zorb@x".replace("@", "i"),
    ],
)
def test_obfuscated_terms_match(text: str) -> None:
    assert TERMS.matches(text)


@pytest.mark.parametrize(
    "text",
    [
        "a purple hippo next to an elephant",  # both words, but not the phrase
        "zorbixing",  # a longer word is another word
        "azorbix",
        "purple 2024 elephant",
        "",
    ],
)
def test_other_text_does_not_match(text: str) -> None:
    assert not TERMS.matches(text)


def test_words_normalise_and_join_spelled_out_letters() -> None:
    assert words("Ça  S'APPELLE ｆｏｏ") == ["ca", "s", "appelle", "foo"]
    assert words("a b c word d") == ["abc", "word", "d"]
    assert words("room 101 r00m") == ["room", "101", "room"]


def test_the_built_in_list_refuses_abuse_terms_and_passes_ordinary_prompts() -> None:
    shipped = ContentFilter.built_in().terms
    assert len(built_in_terms()) > 20
    assert shipped.matches("a photo of CHILD P0RN")
    assert shipped.matches("bestiality scene")
    for prompt in ("a therapist's office", "kids playing football", "a grape vine", "a cat"):
        assert not shipped.matches(prompt), prompt


def test_read_terms_skips_comments_and_blank_lines() -> None:
    assert read_terms("# list\n\nfoo bar  # why\n  baz\n") == ["foo bar", "baz"]


def test_settings_replace_and_extend_the_list(tmp_path: Path) -> None:
    own = tmp_path / "terms.txt"
    own.write_text("# ours\nblue whale\n", encoding="utf-8")
    replaced = ContentFilter.from_settings(Settings(content_filter_terms_file=own)).terms
    assert replaced.matches("a blue whale") and not replaced.matches("bestiality")
    extended = ContentFilter.from_settings(
        Settings(content_filter_extra_terms=["blue whale"])
    ).terms
    assert extended.matches("a blue whale") and extended.matches("bestiality")


def test_a_missing_terms_file_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="content_filter_terms_file"):
        Settings(content_filter_terms_file=tmp_path / "missing.txt")


def test_check_arguments_names_the_field_not_the_text() -> None:
    policy = ContentFilter(TERMS)
    arguments = {"prompt": "a calm lake", "prompts": ["ok", "a tiny zorbix in a long prompt"]}
    with pytest.raises(ToolError) as refused:
        policy.check_arguments("generate_video", arguments)
    assert refused.value.error_type == "CONTENT_FILTERED"
    assert "prompts[1]" in refused.value.message and "generate_video" in refused.value.message
    assert "zorbix" not in refused.value.message
    policy.check_arguments("generate_video", {"prompt": "a calm lake", "width": 512})


def test_text_fields_walk_nested_arguments_and_skip_data_uris() -> None:
    arguments = {
        "prompt": "p",
        "overlay": {"items": [{"text": "t"}]},
        "image": "data:image/png;base64,cHVycGxl",
        "n": 2,
    }
    assert list(text_fields(arguments)) == [("prompt", "p"), ("overlay.items[0].text", "t")]


@pytest.mark.parametrize(("value", "on"), [(None, True), (True, True), (False, False)])
def test_only_false_turns_the_filter_off(value: bool | None, on: bool) -> None:
    assert requested(value) is on
