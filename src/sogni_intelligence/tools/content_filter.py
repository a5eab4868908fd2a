"""The content filter: a policy every tool call passes while its request's `safe_content_filter`
is on (true or absent). Text in the arguments is matched against a term list before the tool
runs; the images it made are screened by a classifier model when one is configured. A refusal
is a `CONTENT_FILTERED` tool error naming the argument, never a silent change of the request.

Matching works on words: the text is Unicode-normalised (compatibility forms, no diacritics
or invisible characters, case-folded), common letter substitutions are undone (`s3x`), and
letters spelled out one by one (`s e x`) are joined again, so that trivial obfuscation does not
pass while a term inside a longer word (`therapist`) does not match.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from sogni_intelligence.config import Settings
from sogni_intelligence.errors import ToolError
from sogni_intelligence.media.content_classifier import ContentClassifier
from sogni_intelligence.media.store import AssetRecord, AssetStore

BUILT_IN_TERMS = "content_filter_terms.txt"

_TOKEN = re.compile(r"[^\W_]+")
_SUBSTITUTES = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t"})
_SYMBOLS = str.maketrans({"@": "a", "$": "s"})


def _plain(text: str) -> str:
    """Compatibility forms folded, diacritics and invisible format characters dropped,
    case folded."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(c for c in decomposed if unicodedata.category(c) not in ("Mn", "Cf"))
    return kept.casefold()


def words(text: str) -> list[str]:
    """The words of `text` as the filter compares them."""
    raw = _TOKEN.findall(_plain(text).translate(_SYMBOLS))
    tokens = [
        token.translate(_SUBSTITUTES) if any(c.isalpha() for c in token) else token for token in raw
    ]
    joined: list[str] = []
    letters: list[str] = []
    for token in [*tokens, ""]:
        if len(token) == 1 and token.isalpha():
            letters.append(token)
            continue
        if len(letters) > 1:
            joined.append("".join(letters))
        else:
            joined.extend(letters)
        letters = []
        if token:
            joined.append(token)
    return joined


@dataclass(frozen=True)
class TermList:
    """Terms as word sequences. A phrase also matches written as one word (`childporn`), and
    a term's last word also matches with a plural ending."""

    sequences: frozenset[tuple[str, ...]]

    @classmethod
    def of(cls, terms: Iterable[str]) -> TermList:
        sequences: set[tuple[str, ...]] = set()
        for term in terms:
            parts = tuple(words(term))
            if not parts:
                continue
            for form in {parts, ("".join(parts),)}:
                sequences.add(form)
                sequences.update({(*form[:-1], form[-1] + "s"), (*form[:-1], form[-1] + "es")})
        return cls(frozenset(sequences))

    def __len__(self) -> int:
        return len(self.sequences)

    def matches(self, text: str) -> bool:
        found = words(text)
        longest = max((len(s) for s in self.sequences), default=0)
        return any(
            tuple(found[start : start + size]) in self.sequences
            for start in range(len(found))
            for size in range(1, min(longest, len(found) - start) + 1)
        )


def read_terms(text: str) -> list[str]:
    """The terms of a list file: one per line; blank lines and `#` comments are skipped."""
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


@cache
def built_in_terms() -> tuple[str, ...]:
    text = resources.files("sogni_intelligence.tools").joinpath(BUILT_IN_TERMS).read_text("utf-8")
    return tuple(read_terms(text))


def text_fields(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(argument path, text) of every string in a tool's arguments, data URIs left out."""
    if isinstance(value, str):
        if not value.startswith("data:"):
            yield path or "arguments", value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from text_fields(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from text_fields(item, f"{path}[{index}]")


def requested(value: object) -> bool:
    """Whether a request's `safe_content_filter` turns the filter on: only `false` turns it
    off, so a request that does not send it is filtered."""
    return value is not False


@dataclass(frozen=True)
class ContentFilter:
    terms: TermList
    classifier: ContentClassifier | None = None

    @classmethod
    def built_in(cls) -> ContentFilter:
        return cls(TermList.of(built_in_terms()))

    @classmethod
    def from_settings(cls, settings: Settings) -> ContentFilter:
        if settings.content_filter_terms_file is not None:
            base = read_terms(Path(settings.content_filter_terms_file).read_text("utf-8"))
        else:
            base = list(built_in_terms())
        model = settings.content_filter_model
        return cls(
            TermList.of([*base, *settings.content_filter_extra_terms]),
            ContentClassifier(model) if model is not None else None,
        )

    def check_arguments(self, tool: str, arguments: dict[str, Any]) -> None:
        """Raise CONTENT_FILTERED naming the first argument whose text matches a term."""
        for path, text in text_fields(arguments):
            if self.terms.matches(text):
                raise ToolError(
                    "CONTENT_FILTERED",
                    f"{tool}: the {path} argument was refused by the content filter "
                    "(safe_content_filter); nothing was made",
                )

    async def check_outputs(self, tool: str, assets: list[AssetRecord], store: AssetStore) -> None:
        """Raise CONTENT_FILTERED when the classifier flags an image the tool made."""
        if self.classifier is None:
            return
        for number, asset in enumerate(assets, start=1):
            if asset.kind != "image":
                continue
            label = await self.classifier.flagged_label(await store.local_path(asset))
            if label is not None:
                raise ToolError(
                    "CONTENT_FILTERED",
                    f"{tool}: output image {number} was refused by the content filter "
                    f"(classified {label!r}); no result is returned",
                )
