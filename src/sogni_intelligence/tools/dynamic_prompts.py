"""Dynamic prompts: `{a|b|c}` in a prompt gives each variation of a batch its own option.

The hosted tools let one call render a batch whose images differ in one chosen way (a setting,
a scene per storyboard panel): variation i takes option i of every group, wrapping around when
a group has fewer options than the batch. Groups nest; braces without `|` stay as they are, so
JSON written into a prompt is left alone.
"""

from __future__ import annotations

import re

_GROUP = re.compile(r"\{([^{}]*\|[^{}]*)\}")


def expand(prompt: str, variation: int) -> str:
    """The prompt of one variation (0-based)."""
    while True:
        expanded = _GROUP.sub(lambda m: _pick(m.group(1), variation), prompt)
        if expanded == prompt:
            return expanded
        prompt = expanded


def variation_prompts(prompt: str, count: int) -> list[str]:
    return [expand(prompt, i) for i in range(count)]


def _pick(options: str, variation: int) -> str:
    choices = [choice.strip() for choice in options.split("|")]
    return choices[variation % len(choices)]
