from typing import Any

import pytest

from sogni_intelligence.agent.surfaces import hosted_tools
from sogni_intelligence.errors import ServiceError
from sogni_intelligence.tools.template_tools import exposed_tools

TEMPLATE: dict[str, Any] = {
    "id": "tpl_1",
    "name": "Moody Portrait!",
    "exposeToLLM": True,
    "inputs": [
        {"name": "subject", "type": "text", "required": True, "description": "who"},
        {"name": "mood", "type": "select", "options": [{"value": "calm"}, {"value": "wild"}]},
        {"name": "refs", "type": "image", "multiple": {"min": 0, "max": 2}},
        {"name": "style", "type": "text", "internal": True, "default": "film"},
    ],
    "stages": [
        {
            "type": "fixed",
            "id": "art",
            "tool": "generate_image",
            "args": {"prompt": "$inputs.subject, $inputs.mood, $inputs.style"},
        }
    ],
}


def test_tool_name_and_parameters_come_from_the_template() -> None:
    hidden = {**TEMPLATE, "name": "Hidden", "exposeToLLM": False}
    tools = exposed_tools([TEMPLATE, hidden, {**TEMPLATE, "llmPriority": 200}])
    assert list(tools) == ["template_moody_portrait", "template_moody_portrait_2"]
    parameters = tools["template_moody_portrait"].parameters()
    assert parameters["required"] == ["subject"]
    assert set(parameters["properties"]) == {"subject", "mood", "refs"}  # not the internal one
    assert parameters["properties"]["mood"]["anyOf"][0]["enum"] == ["calm", "wild"]
    assert parameters["properties"]["refs"]["anyOf"][0]["type"] == "array"
    assert "URL" in parameters["properties"]["refs"]["description"]


def test_a_call_compiles_the_template_and_a_bad_one_is_a_400() -> None:
    tool = exposed_tools([TEMPLATE])["template_moody_portrait"]
    start = tool.workflow({"subject": "a cat", "mood": "calm", "refs": None})
    assert start["input"]["steps"][0]["arguments"]["prompt"] == "a cat, calm, film"
    assert start["options"]["template"]["inputs"] == {
        "subject": "a cat",
        "mood": "calm",
        "style": "film",
    }
    with pytest.raises(ServiceError) as caught:
        tool.workflow({"subject": "a cat", "refs": ["data:image/png;base64,AA"]})
    assert caught.value.status == 400 and caught.value.param == "inputs.refs"


def test_only_the_creative_agent_surface_offers_them() -> None:
    tools = exposed_tools([TEMPLATE])
    assert "template_moody_portrait" in hosted_tools("creative-agent", set(), tools)
    assert "template_moody_portrait" not in hosted_tools("creative-tools", set(), tools)
    assert "template_moody_portrait" not in hosted_tools(
        "creative-agent", {"template_moody_portrait"}, tools
    )


def test_a_stored_template_that_no_longer_validates_is_not_offered() -> None:
    stale = {**TEMPLATE, "name": "Stale", "stages": [{"type": "batch", "id": "b", "itemStage": {}}]}
    assert list(exposed_tools([stale, TEMPLATE])) == ["template_moody_portrait"]
