"""The embedded engine on the real default model (SmolLM2-135M-Instruct)."""

import asyncio
import json
import re
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import jsonschema
import pytest
import pytest_asyncio

from sogni_intelligence.config import ModelConfig
from sogni_intelligence.llm.embedded import EmbeddedEngine
from sogni_intelligence.llm.grammar import tool_call_schema
from sogni_intelligence.llm.protocol import EngineError
from sogni_intelligence.media.models import IMAGE_MODELS, VIDEO_MODELS
from sogni_intelligence.media.store import AssetRecord
from sogni_intelligence.tools.audio_tools import KEYSCALE_SCHEMA
from sogni_intelligence.tools.call_schema import offered_definition
from sogni_intelligence.tools.catalog import CATALOG, surface
from sogni_intelligence.tools.composing import ALL_MEDIA_MODELS
from sogni_intelligence.tools.media_context import MediaContext

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

STORY = [{"role": "user", "content": "Write a very long story about a lighthouse keeper."}]
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "age", "tags"],
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city", "unit"],
        },
    },
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine() -> AsyncIterator[EmbeddedEngine]:
    engine = EmbeddedEngine(ModelConfig(id="smollm2", n_parallel=2, n_ctx=4096))
    await engine.start()
    yield engine
    await engine.close()


async def _text_and_calls(engine: EmbeddedEngine, request: dict) -> tuple[str, list, str | None]:
    text, calls, finish = "", {}, None
    async for chunk in engine.stream(request):
        for choice in chunk["choices"]:
            delta = choice["delta"]
            text += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                entry = calls.setdefault(call["index"], {"name": "", "arguments": ""})
                entry["name"] += call.get("function", {}).get("name") or ""
                entry["arguments"] += call.get("function", {}).get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    return text, [calls[i] for i in sorted(calls)], finish


async def test_capabilities_are_read_from_the_model(engine: EmbeddedEngine) -> None:
    assert engine.info.engine == "embedded"
    assert engine.info.vision is False
    assert engine.info.native_tools is False  # SmolLM2's template has no tool support
    assert engine.info.model.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")


def _nice_levels() -> dict[int, int]:
    """Each thread of this process: its nice level (field 19 of /proc's stat)."""
    levels = {}
    for task in Path("/proc/self/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        levels[int(task.name)] = int(fields[16])
    return levels


@pytest.mark.skipif(sys.platform != "linux", reason="nice levels per thread are Linux's")
async def test_llama_threads_run_below_the_event_loop(engine: EmbeddedEngine) -> None:
    levels = _nice_levels()
    lowered = [tid for tid, nice in levels.items() if nice == engine.config.nice]
    assert engine.config.nice == 5
    assert lowered, "llama.cpp's threads keep the process's priority"
    assert levels[threading.get_native_id()] == 0  # the loop's own thread is untouched
    before = len(lowered)
    # Threads llama.cpp starts once it computes come from those and keep the level too.
    text, _, _ = await _text_and_calls(engine, {"messages": STORY, "max_tokens": 8})
    assert text
    assert len([n for n in _nice_levels().values() if n == engine.config.nice]) >= before


async def test_close_stops_generation_within_100_ms(engine: EmbeddedEngine) -> None:
    stream = engine.stream({"messages": STORY, "max_tokens": 3000})
    received = 0
    async for _ in stream:
        received += 1
        if received == 5:
            break
    assert await engine.processing_slots() == 1
    started = time.monotonic()
    await stream.aclose()
    # llama.cpp sees the closed connection at its next token; each look at its slots takes
    # a few ms of its own, so the time that counts is when the first idle look was sent.
    while True:
        asked = time.monotonic()
        if not await engine.processing_slots() or asked - started > 2:
            break
        await asyncio.sleep(0.002)
    assert await engine.processing_slots() == 0
    assert asked - started < 0.1


async def test_slots_generate_concurrently(engine: EmbeddedEngine) -> None:
    long_answer = engine.stream({"messages": STORY, "max_tokens": 3000})
    async for chunk in long_answer:
        if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
            break
    # With a single slot this short request would wait for all 3000 tokens of the first.
    text, _, finish = await _text_and_calls(engine, {"messages": STORY, "max_tokens": 5})
    assert finish == "length" and text
    still_running = await anext(long_answer)
    assert still_running["choices"][0]["finish_reason"] is None
    await long_answer.aclose()


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_json_schema_output_validates(engine: EmbeddedEngine, seed: int) -> None:
    request = {
        "messages": [{"role": "user", "content": "Describe a person as JSON."}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON}},
        "max_tokens": 200,
        "seed": seed,
        "temperature": 0.8,
    }
    text, _, finish = await _text_and_calls(engine, request)
    assert finish == "stop"
    document = json.loads(text)
    jsonschema.validate(document, {**PERSON, "additionalProperties": False})
    assert text == json.dumps(document, separators=(",", ":"), ensure_ascii=False)


async def test_json_object_output_is_an_object(engine: EmbeddedEngine) -> None:
    request = {
        "messages": [{"role": "user", "content": "Give me a JSON object about cats."}],
        "response_format": {"type": "json_object"},
        "max_tokens": 120,
        "seed": 4,
    }
    text, _, finish = await _text_and_calls(engine, request)
    if finish == "stop":
        assert isinstance(json.loads(text), dict)
    else:  # an open object may run to max_tokens; what came out is still JSON-shaped
        assert text.startswith("{")


def _forced(content: str, tool: dict, seed: int, max_tokens: int) -> dict:
    """A sampled request that must call `tool`."""
    return {
        "messages": [{"role": "user", "content": content}],
        "tools": [tool],
        "tool_choice": "required",
        "seed": seed,
        "temperature": 0.8,
        "max_tokens": max_tokens,
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_required_tool_choice_returns_a_valid_call(engine: EmbeddedEngine, seed: int) -> None:
    request = _forced("What's the weather in Lisbon?", WEATHER, seed, max_tokens=200)
    text, calls, finish = await _text_and_calls(engine, request)
    assert text == "" and finish == "tool_calls" and len(calls) == 1
    assert calls[0]["name"] == "get_weather"
    arguments = json.loads(calls[0]["arguments"])
    jsonschema.validate(arguments, WEATHER["function"]["parameters"])


async def test_named_tool_choice_calls_that_function(engine: EmbeddedEngine) -> None:
    other = {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {
                "type": "object",
                "properties": {"zone": {"type": "string"}},
                "required": ["zone"],
            },
        },
    }
    request = {
        "messages": [{"role": "user", "content": "What's the weather in Lisbon?"}],
        "tools": [WEATHER, other],
        "tool_choice": {"type": "function", "function": {"name": "get_time"}},
        "max_tokens": 100,
        "temperature": 0,  # a 135M model sometimes rambles inside a string at random seeds
    }
    _, calls, finish = await _text_and_calls(engine, request)
    assert finish == "tool_calls" and [c["name"] for c in calls] == ["get_time"]
    assert set(json.loads(calls[0]["arguments"])) == {"zone"}


async def test_too_long_prompt_is_a_400(engine: EmbeddedEngine) -> None:
    with pytest.raises(EngineError) as info:
        await _text_and_calls(engine, {"messages": [{"role": "user", "content": "x " * 5000}]})
    assert info.value.status == 400 and info.value.code == "context_length_exceeded"


async def test_image_on_a_text_only_model_is_a_400(engine: EmbeddedEngine) -> None:
    content = [
        {"type": "text", "text": "what"},
        {
            "type": "image_url",
            "image_url": {
                "url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
            },
        },
    ]
    with pytest.raises(EngineError) as info:
        await _text_and_calls(engine, {"messages": [{"role": "user", "content": content}]})
    assert info.value.status == 400


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_forced_call_holds_string_patterns(engine: EmbeddedEngine, seed: int) -> None:
    """The grammar keeps a tool's string `pattern` (a musical key here): a model cannot write
    '120,' where the schema asks for 'C major'."""
    definition = CATALOG["generate_music"].definition()
    parameters = definition["function"]["parameters"]
    # The key as a string that must be given (the tool's own schema also allows null).
    keyscale = next(b for b in parameters["properties"]["keyscale"]["anyOf"] if "pattern" in b)
    properties = {**parameters["properties"], "keyscale": keyscale}
    required = [*parameters.get("required", []), "keyscale"]
    music = {
        **definition,
        "function": {
            **definition["function"],
            "parameters": {**parameters, "properties": properties, "required": required},
        },
    }
    request = _forced("Make a 120 bpm song about the summer.", music, seed, max_tokens=400)
    _, calls, finish = await _text_and_calls(engine, request)
    assert finish == "tool_calls" and len(calls) == 1
    keyscale = json.loads(calls[0]["arguments"])["keyscale"]
    assert re.fullmatch(KEYSCALE_SCHEMA["pattern"], keyscale), keyscale


def _session_with_a_video() -> MediaContext:
    media = MediaContext()
    media.add_upload(
        AssetRecord(
            id="clip", owner="o", sha256="0" * 64, mime="video/mp4", kind="video", size_bytes=1
        )
    )
    return media


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_free_reply_answers_or_calls_validly(engine: EmbeddedEngine, seed: int) -> None:
    """After a call, the model may answer or call again; what it writes as a call is a valid
    call of an offered tool, never text the server would have to reject (without the grammar
    this conversation draws a call whose arguments are a list, or no JSON at all)."""
    media = _session_with_a_video()
    offered = {
        tool.name: definition
        for tool in surface("creative-tools")
        if (definition := offered_definition(tool, media))
    }
    first = {
        "id": "c1",
        "type": "function",
        "function": {"name": "add_subtitles", "arguments": "{}"},
    }
    refusal = {
        "ok": False,
        "tool": "add_subtitles",
        "error_type": "USER_INPUT_INCOMPLETE",
        "message": "no subtitle lines were given: pass them as cues or srt",
    }
    messages = [
        {"role": "system", "content": "Media of this request, by the index tools take: video -1."},
        {"role": "user", "content": "Add the subtitle 'Hello world' to my video for two seconds."},
        {"role": "assistant", "content": None, "tool_calls": [first]},
        {
            "role": "tool",
            "tool_call_id": "c1",
            "name": "add_subtitles",
            "content": json.dumps(refusal),
        },
    ]
    request = {
        "messages": messages,
        "tools": list(offered.values()),
        "tool_choice": "auto",
        "seed": seed,
        "temperature": 0.8,
        "max_tokens": 300,
    }
    text, calls, finish = await _text_and_calls(engine, request)
    assert "<tool_call>" not in text
    for call in calls:
        arguments = json.loads(call["arguments"])
        jsonschema.validate(arguments, offered[call["name"]]["function"]["parameters"])
        CATALOG[call["name"]].args.model_validate(arguments)
    assert finish == ("tool_calls" if calls else finish)


async def test_a_plain_answer_with_tools_offered_ends_where_the_model_ends_it(
    engine: EmbeddedEngine,
) -> None:
    """The free-text grammar lets the model close its turn: llama.cpp stops a grammar's
    generation only when the grammar is complete (without the end-of-turn token in it, this
    answer ran on to max_tokens)."""
    media = MediaContext()
    tools = [d for t in surface("creative-tools") if (d := offered_definition(t, media))]
    request = {
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "tools": tools,
        "tool_choice": "auto",
        "temperature": 0,
        "max_tokens": 80,
    }
    text, calls, finish = await _text_and_calls(engine, request)
    assert (text, calls, finish) == ("The capital of France is Paris.", [], "stop")


async def test_every_hosted_tool_has_a_call_grammar_llama_cpp_can_use(
    engine: EmbeddedEngine,
) -> None:
    """llama.cpp drops a grammar it cannot compile and samples freely (a schema pattern too
    complex for llguidance did that once): each tool's call grammar, the one a forced call
    gets, must hold the start of the reply, which the free model would not write."""
    for name, tool in sorted(CATALOG.items()):
        schema = tool_call_schema([tool.definition()], 1)
        request = {
            "messages": [{"role": "user", "content": "Go ahead."}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "c", "schema": schema},
            },
            "max_tokens": 30,
            "temperature": 0.8,
            "seed": 1,
        }
        text, _, _ = await _text_and_calls(engine, request)
        assert text.startswith(f'[{{"name":"{name}","arguments":{{'), (name, text)


@pytest.mark.parametrize(
    "content",
    [
        "Improve this image prompt for me: 'dog on beach'.",
        "Enhance this video prompt for ltx25: 'a cat runs'.",
        "Make my edit prompt better: 'make the sky red'.",
    ],
)
async def test_a_forced_prompt_call_pairs_the_target_with_its_models(
    engine: EmbeddedEngine, content: str
) -> None:
    """The schema ties destination_model to target_output, and the grammar holds a model to
    it: no 'image_prompt.json' as a model, no video model for an image prompt."""
    tool = CATALOG["enhance_prompt"]
    request = _forced(content, tool.definition(), seed=1, max_tokens=400)
    request["temperature"] = 0  # a 135M model sometimes rambles inside a string at random seeds
    _, calls, finish = await _text_and_calls(engine, request)
    assert finish == "tool_calls" and len(calls) == 1
    arguments = json.loads(calls[0]["arguments"])
    jsonschema.validate(arguments, tool.parameters())
    tables = {
        "image_prompt": IMAGE_MODELS,
        "edit_prompt": IMAGE_MODELS,
        "video_prompt": VIDEO_MODELS,
        "model_prompt": ALL_MEDIA_MODELS,
    }
    assert arguments["destination_model"] in tables[arguments["target_output"]]
