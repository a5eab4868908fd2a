"""Tool calls that a model writes as text, read back into calls.

Models whose chat template has no tool support (or that were trained on another template's
habits) write calls in several text forms:

- `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (Hermes, Qwen, our own prompt);
- `<function=NAME>{...}</function>` and `<|python_tag|>{"name": ..., "parameters": ...}`
  (Llama 3.1);
- `[TOOL_CALLS][{"name": ..., "arguments": ...}]` (Mistral);
- a fenced ```json block, or a whole answer that is a JSON call (Llama 3.2's JSON form).

`CallReader` takes a reply as it streams: text that cannot be part of a call is released at
once, anything from a possible call onwards is held until the reply ends, then read. A call
opened with an explicit marker that cannot be read is reported as `Unread`, so that the caller
can send the error back to the model; JSON in a fence or a plain JSON answer is a call only
when it names a known tool, and is otherwise the answer it looks like.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_TAGGED = ("<tool_call>", "<function=", "<|python_tag|>", "[TOOL_CALLS]")
_FENCE = "```"
_OPENERS = (*_TAGGED, _FENCE)
#: Whitespace, spelled out: these patterns also serve as llguidance regexes (see `CALL_ANYWHERE`),
#: whose `\s` is not Python's.
_SPACE = r"[ \t\n\r\f\v]"
_FUNCTION_TAG = re.compile(r"<function=([\w.\-]+)>(.*?)(?:</function>|$)", re.DOTALL)
_NAME = re.compile(r'"name"\s*:\s*"([^"]+)"')
_FENCED = re.compile(rf"```(?:json)?{_SPACE}*\n(.*?)(?:```|$)", re.DOTALL)
_JSON_FIRST = re.compile(rf"{_SPACE}*[\[{{]")

#: Where text holds a possible call, as regular expressions valid in Python and in llguidance:
#: a call marker anywhere, or JSON opening a json (or bare) fence...
CALL_ANYWHERE = "|".join([*map(re.escape, _TAGGED), rf"```(json)?{_SPACE}*\n{_SPACE}*[\[{{]"])
#: ...or JSON that opens the reply. Text that matches neither is an answer to `read_calls`.
CALL_FIRST = _JSON_FIRST.pattern

#: A call read from text: the function's name and its arguments as compact JSON.
TextCall = tuple[str, str]


@dataclass(frozen=True)
class Unread:
    """A call the model clearly meant to make but wrote so it cannot be read."""

    name: str | None
    text: str
    reason: str


@dataclass
class Reading:
    """What a reply held back turned out to be: calls, an unreadable call, or answer text."""

    calls: list[TextCall] = field(default_factory=list)
    unread: Unread | None = None
    text: str = ""


class CallReader:
    """Feed a reply's text as it comes; `finish` reads what was held back."""

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self._pending = ""  # not yet released: maybe the start of a marker
        self._held = ""  # from a possible call to the end of the reply
        self._started = False  # anything but whitespace released yet
        self._in_code = False  # inside a fenced block that is not JSON

    def feed(self, text: str) -> str:
        """The part of `text` that can be shown now."""
        if self._held:
            self._held += text
            return ""
        self._pending += text
        released = ""
        while self._pending:
            if not self._started:
                stripped = self._pending.lstrip()
                if not stripped:
                    return released
                if stripped[0] in "{[":
                    self._held, self._pending = self._pending, ""
                    return released
            at = _first_opener(self._pending)
            if at is None:
                keep = _partial_marker(self._pending)
                cut = len(self._pending) - keep
                released += self._pending[:cut]
                self._pending = self._pending[cut:]
                break
            if self._pending.startswith(_FENCE, at):
                line_end = self._pending.find("\n", at)
                if line_end < 0:  # the fence's language is not known yet
                    released += self._pending[:at]
                    self._pending = self._pending[at:]
                    break
                language = self._pending[at + len(_FENCE) : line_end].strip().lower()
                if self._in_code or language not in ("json", ""):
                    # Code in another language, or the fence that closes it: shown as it is.
                    self._in_code = not self._in_code
                    released += self._pending[: line_end + 1]
                    self._pending = self._pending[line_end + 1 :]
                    self._started = True
                    continue
            released += self._pending[:at]
            self._held, self._pending = self._pending[at:], ""
            break
        if released.strip():
            self._started = True
        return released

    def finish(self) -> Reading:
        """Read what was held back; any text that is not a call comes back as `text`."""
        held, self._held = self._held + self._pending, ""
        self._pending = ""
        if not held:
            return Reading()
        return read_calls(held, self.names)


def read_calls(text: str, names: set[str]) -> Reading:
    """The calls in `text` (held back from a possible call on), or why one cannot be read."""
    tagged = any(marker in text for marker in _TAGGED)
    calls: list[TextCall] = []
    problems: list[tuple[str | None, str]] = []
    for body, name in _candidates(text):
        try:
            value = _first_json(body)
        except ValueError as exc:
            guess = _NAME.search(body)
            name = name or (guess.group(1) if guess else None)
            problems.append((name, f"the call is not valid JSON ({exc})"))
            continue
        if name is not None:
            value = {"name": name, "arguments": value}
        found, unknown = _calls_in(value, names)
        calls += found
        problems += [(n, f"there is no tool named {n!r}") for n in unknown]
    if calls:
        return Reading(calls)
    if problems and (tagged or any(name for name, _ in problems)):
        name, reason = problems[0]
        return Reading(unread=Unread(name, text, reason))
    if tagged:
        return Reading(unread=Unread(None, text, "no call could be found after the marker"))
    return Reading(text=text)


def _candidates(text: str) -> list[tuple[str, str | None]]:
    """Each place a call may be written: its JSON text, and the name when a tag gives it."""
    out: list[tuple[str, str | None]] = []
    for block in text.split("<tool_call>")[1:]:
        out.append((block.split("</tool_call>", 1)[0], None))
    out += [(m.group(2), m.group(1)) for m in _FUNCTION_TAG.finditer(text)]
    for marker in ("<|python_tag|>", "[TOOL_CALLS]"):
        if marker in text:
            out.append((text.split(marker, 1)[1], None))
    if not out:  # untagged JSON is a call only where it starts a fence or the reply
        out = [(m.group(1), None) for m in _FENCED.finditer(text) if _JSON_FIRST.match(m.group(1))]
    if not out and _JSON_FIRST.match(text):
        out = [(text, None)]
    return out


def _first_json(body: str) -> Any:
    """The first JSON value in `body` (models add text or a second call after it)."""
    stripped = body.strip()
    if not stripped:
        raise ValueError("nothing was written")
    try:
        value, _ = json.JSONDecoder().raw_decode(stripped)
    except json.JSONDecodeError as exc:
        raise ValueError(exc.msg) from exc
    return value


def _calls_in(value: Any, names: set[str]) -> tuple[list[TextCall], list[str]]:
    """The calls a JSON value holds (one call, a list, OpenAI's shapes), and any names it
    gives that are no tool. JSON that is not shaped like a call yields neither."""
    if isinstance(value, list):
        calls: list[TextCall] = []
        unknown: list[str] = []
        for item in value:
            found, missing = _calls_in(item, names)
            calls += found
            unknown += missing
        return calls, unknown
    if not isinstance(value, dict):
        return [], []
    if isinstance(value.get("tool_calls"), list):
        return _calls_in(value["tool_calls"], names)
    if isinstance(value.get("function"), dict):
        return _calls_in(value["function"], names)
    name = value.get("name")
    if not isinstance(name, str):
        return [], []
    if name not in names:  # a call to no tool, or JSON that merely has a "name"
        return [], [name] if {"arguments", "parameters"} & value.keys() else []
    arguments = value.get("arguments", value.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except ValueError:
            return [], []
    if not isinstance(arguments, dict):
        return [], []
    return [(name, json.dumps(arguments, separators=(",", ":"), ensure_ascii=False))], []


def _first_opener(text: str) -> int | None:
    found = [at for marker in _OPENERS if (at := text.find(marker)) >= 0]
    return min(found) if found else None


def _partial_marker(text: str) -> int:
    """How many characters at the end of `text` may begin a marker (held until the next)."""
    for size in range(min(max(map(len, _OPENERS)) - 1, len(text)), 0, -1):
        if any(marker.startswith(text[-size:]) for marker in _OPENERS):
            return size
    return 0
