"""Tool calls written as text: each common form is read, nothing of a call leaks into the
answer while it streams, and a call that cannot be read is reported as such."""

import json
import re

import pytest

from sogni_intelligence.llm.text_calls import CALL_ANYWHERE, CALL_FIRST, CallReader, read_calls

NAMES = {"generate_image", "get_weather"}
ARGS = {"prompt": "a red fox"}
FORMS = [
    '<tool_call>{"name": "generate_image", "arguments": {"prompt": "a red fox"}}</tool_call>',
    '<tool_call>\n{"name": "generate_image", "arguments": "{\\"prompt\\": \\"a red fox\\"}"}',
    '<function=generate_image>{"prompt": "a red fox"}</function>',
    '<|python_tag|>{"name": "generate_image", "parameters": {"prompt": "a red fox"}}',
    '[TOOL_CALLS][{"name": "generate_image", "arguments": {"prompt": "a red fox"}}]',
    '```json\n{"name": "generate_image", "arguments": {"prompt": "a red fox"}}\n```',
    '```\n{"name": "generate_image", "arguments": {"prompt": "a red fox"}}\n```',
    '{"name": "generate_image", "parameters": {"prompt": "a red fox"}}',
    '{"type": "function", "function": {"name": "generate_image", "arguments": '
    '{"prompt": "a red fox"}}}',
    '[{"name": "generate_image", "arguments": {"prompt": "a red fox"}}]',
]


@pytest.mark.parametrize(
    "text",
    FORMS,
    ids=[
        "hermes",
        "string-arguments",
        "llama-function-tag",
        "llama-python-tag",
        "mistral",
        "fenced-json",
        "fenced-bare",
        "llama-json",
        "openai-shape",
        "list",
    ],
)
def test_each_common_form_is_read(text: str) -> None:
    reading = read_calls(text, NAMES)
    assert reading.unread is None and reading.text == ""
    [(name, arguments)] = reading.calls
    assert name == "generate_image" and json.loads(arguments) == ARGS


def test_several_calls_in_one_reply() -> None:
    text = (
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>\n'
        '<tool_call>{"name": "generate_image", "arguments": {"prompt": "a red fox"}}</tool_call>'
    )
    assert [name for name, _ in read_calls(text, NAMES).calls] == ["get_weather", "generate_image"]


@pytest.mark.parametrize(
    ("text", "name", "reason"),
    [
        (
            '<tool_call>{"name": "generate_image", "arguments": {"prompt": "a fox',
            "generate_image",
            "not valid JSON",
        ),
        ('<tool_call>{"name": "draw", "arguments": {}}</tool_call>', "draw", "no tool named"),
        ("<tool_call></tool_call>", None, "not valid JSON (nothing was written)"),
        ('```json\n{"name": "paint", "arguments": {"x": 1}}\n```', "paint", "no tool named"),
    ],
    ids=["cut-off", "unknown-tool", "empty", "fenced-unknown-tool"],
)
def test_a_call_that_cannot_be_read_is_reported(text: str, name: str | None, reason: str) -> None:
    reading = read_calls(text, NAMES)
    assert reading.calls == [] and reading.unread is not None
    assert reading.unread.name == name and reason in reading.unread.reason
    assert reading.unread.text == text


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "Ada", "age": 36}',  # JSON that merely has a name
        "```json\n[1, 2, 3]\n```",
        "[1] See the first note.",
        "{not json at all",
    ],
)
def test_json_that_is_no_call_is_the_answer(text: str) -> None:
    reading = read_calls(text, NAMES)
    assert reading.calls == [] and reading.unread is None and reading.text == text


def _stream(reader: CallReader, pieces: list[str]) -> str:
    return "".join(reader.feed(piece) for piece in pieces)


def test_text_before_a_call_streams_and_the_call_is_held() -> None:
    reader = CallReader(NAMES)
    pieces = ["Sure, ", "drawing it now. <tool", '_call>{"name": "generate_image", ', '"arguments"']
    pieces += [': {"prompt": "a red fox"}}</tool_call>']
    assert _stream(reader, pieces) == "Sure, drawing it now. "
    reading = reader.finish()
    assert [name for name, _ in reading.calls] == ["generate_image"]


def test_a_marker_prefix_that_is_no_marker_is_released() -> None:
    reader = CallReader(NAMES)
    assert reader.feed("a < b and c <t") == "a < b and c "
    assert reader.feed("ag> done") == "<tag> done"
    assert reader.finish().text == ""


def test_a_code_fence_in_another_language_streams_on() -> None:
    reader = CallReader(NAMES)
    shown = _stream(reader, ["Here:\n``", "`python\nprint(1)\n", "```\nDone."])
    assert shown == "Here:\n```python\nprint(1)\n```\nDone."
    assert reader.finish().text == ""


def test_an_answer_that_is_not_a_call_comes_back_whole_at_the_end() -> None:
    reader = CallReader(NAMES)
    assert _stream(reader, ["  ", '{"name": "Ada"', "}"]) == ""
    assert reader.finish().text == '  {"name": "Ada"}'


@pytest.mark.parametrize(
    "text",
    [
        '```\nperson = {"name": "Ada"}\n```',  # not JSON in the fence: code that names a name
        '```json\nNot JSON, but "name": "generate_image"\n```',
        'Say "name": "generate_image" and stop.',
    ],
)
def test_a_fence_or_text_that_does_not_open_with_json_is_no_call(text: str) -> None:
    reading = read_calls(text, NAMES)
    assert reading.calls == [] and reading.unread is None and reading.text == text


def _admitted(text: str) -> bool:
    """What a grammar of free text lets a model write (see `grammar.text_or_calls_grammar`)."""
    return re.search(CALL_ANYWHERE, text) is None and re.match(CALL_FIRST, text) is None


ANSWERS = [
    "The capital of France is Paris.",
    "Here:\n```python\nprint({'a': 1})\n```\nDone.",
    "```\nplain words in a bare fence\n```",
    '```json\n"just a string"\n```',
    "Use a <tool> tag, or write <tool_ and stop",
    'The result was {"name": "generate_image", "arguments": {}} as JSON mid-sentence.',
    '```\nperson = {"name": "Ada"}\n```',
    "A list: [1, 2, 3]",
]


@pytest.mark.parametrize("text", ANSWERS)
def test_what_a_free_text_grammar_admits_is_read_as_an_answer(text: str) -> None:
    assert _admitted(text)
    reader = CallReader(NAMES)
    shown = "".join(reader.feed(text[i : i + 3]) for i in range(0, len(text), 3))
    reading = reader.finish()
    assert reading.calls == [] and reading.unread is None
    assert shown + reading.text == text


@pytest.mark.parametrize(
    "text",
    [
        *FORMS,
        '<tool_call>{"name": "generate_image", "arguments": {"prompt": "a fox',  # cut off
        '```json\n{"name": "paint", "arguments": {"x": 1}}\n```',
        'Sure: ```\n\n  [{"name": "generate_image"',
        "Call <function=generate_image> now",
    ],
)
def test_anything_read_as_a_call_is_kept_out_of_free_text(text: str) -> None:
    assert not _admitted(text)
