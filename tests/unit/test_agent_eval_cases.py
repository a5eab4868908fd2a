"""The evaluation's cases and its scoring: every case names real tools, and the scoring passes
and fails response bodies as its criteria say."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sogni_intelligence.agent.surfaces import hosted_tools
from sogni_intelligence.tools.catalog import CATALOG

BENCH = Path(__file__).parents[2] / "benchmarks" / "bench_agent_eval.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_agent_eval", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bench = _load()
CASES = bench.load_cases()


def test_the_cases_are_many_distinct_and_name_tools_their_surface_offers() -> None:
    assert len(CASES) >= 40
    assert len({case.id for case in CASES}) == len(CASES)
    for case in CASES:
        offered = hosted_tools(case.sogni_tools, set())
        for tool in case.expect.tools_any + case.expect.tools_all:
            assert tool in CATALOG, (case.id, tool)
            assert tool in offered, (case.id, tool, case.sogni_tools)
        expect = case.expect
        assert expect.tools_any or expect.tools_all or expect.no_tools or expect.clarify, case.id


def _case(**expect: Any) -> Any:
    return bench.Case(id="c", category="t", prompt="p", expect=bench.Expect(**expect))


def _body(answer: str = "Done.", *results: dict[str, Any]) -> dict[str, Any]:
    message = {"role": "assistant", "content": answer}
    return {"choices": [{"message": message}], "sogni_tool_results": list(results)}


def _image(width: int = 1024, height: int = 1024, tool: str = "generate_image") -> dict:
    asset = {"type": "image", "width": width, "height": height}
    return {"tool": tool, "ok": True, "output_assets": [asset]}


def _rejected(error_type: str) -> dict[str, Any]:
    return {"tool": "edit_image", "ok": False, "error_type": error_type, "message": "x"}


@pytest.mark.parametrize(
    ("expect", "body", "failure"),
    [
        ({"tools_any": ["generate_image"]}, _body("Here.", _image()), None),
        ({"tools_any": ["generate_image"]}, _body("I cannot draw."), "none of"),
        ({"tools_all": ["generate_image", "upscale_image"]}, _body("", _image()), "did not"),
        ({"no_tools": True, "answer": True}, _body("Paris."), None),
        ({"no_tools": True}, _body("Paris.", _image()), "plain question"),
        ({"answer": True, "no_tools": True}, _body("   "), "no answer"),
        ({"no_tools": True}, _body("la " * 1000), "answer of"),
        ({"clarify": True}, _body("Which photo do you mean?"), None),
        ({"clarify": True}, _body("Done."), "asked no question"),
        (
            {"tools_any": ["generate_image"], "outputs": [{"type": "image", "width": 512}]},
            _body("", _image(1024, 1024)),
            "wanted 1 image",
        ),
        (
            {"tools_any": ["generate_image"], "outputs": [{"type": "image", "count": 2}]},
            _body("", _image(), _image()),
            None,
        ),
        (
            {
                "tools_any": ["generate_image"],
                "outputs": [{"type": "image", "orientation": "portrait"}],
            },
            _body("", _image(576, 1024)),
            None,
        ),
        (
            {"tools_any": ["generate_image"]},
            _body("", _rejected("ASSET_NOT_FOUND"), _image()),
            "1 invalid call",
        ),
        (
            {"tools_any": ["generate_image"], "mentions": ["Fox"]},
            _body("", {**_image(), "arguments": {"prompt": "a red fox"}}),
            None,
        ),
        (
            {"tools_any": ["generate_image"], "mentions": ["fox"]},
            _body("", {**_image(), "arguments": {"prompt": "Create images from a text prompt"}}),
            "do not mention ['fox']",
        ),
    ],
)
def test_scoring(expect: dict[str, Any], body: dict[str, Any], failure: str | None) -> None:
    result = bench.score(_case(**expect), body)
    assert result.passed is (failure is None), result
    if failure is not None:
        assert result.failure is not None and failure in result.failure


def test_only_invalid_rejections_count_as_invalid_calls() -> None:
    unavailable = {"tool": "x", "ok": False, "error_type": "MODEL_UNAVAILABLE"}
    body = _body("", _rejected("PARAMETER_INVALID"), unavailable, _image())
    result = bench.score(_case(tools_any=["generate_image"]), body)
    assert (result.calls, result.invalid) == (3, 1)
    totals = bench.summary([bench.Outcome("c", "t", 1.0, result)])
    assert totals["invalid_calls"] == 1 and round(totals["invalid_pct"], 1) == 33.3
