"""The catalog as a whole: every tool of the spec's media surface, each with a valid schema."""

import pytest
from jsonschema.validators import validator_for

from sogni_intelligence.config import QUEUE_NAMES
from sogni_intelligence.tools import composition_tools
from sogni_intelligence.tools.catalog import CATALOG, definitions, surface

SPEC_MEDIA_TOOLS = {
    "generate_image",
    "edit_image",
    "apply_style",
    "restore_photo",
    "refine_result",
    "change_angle",
    "upscale_image",
    "generate_video",
    "animate_photo",
    "sound_to_video",
    "video_to_video",
    "extend_video",
    "replace_video_segment",
    "stitch_video",
    "orbit_video",
    "dance_montage",
    "overlay_video",
    "add_subtitles",
    "upscale_video",
    "generate_music",
    "generate_speech",
    "analyze_image",
    "analyze_video",
    "extract_metadata",
}


def test_every_media_tool_of_the_spec_is_in_the_catalog() -> None:
    assert set(CATALOG) >= SPEC_MEDIA_TOOLS


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_tool_definition_is_a_valid_openai_function(name: str) -> None:
    definition = CATALOG[name].definition()
    function = definition["function"]
    assert definition["type"] == "function" and function["name"] == name
    assert 10 < len(function["description"]) < 400
    schema = function["parameters"]
    validator_for(schema).check_schema(schema)
    assert schema["type"] == "object" and schema.get("additionalProperties") is False
    assert "title" not in schema


COMPOSITION = {"enhance_prompt", "compose_script", "compose_lyrics", "compose_instrumental"}
AGENT_ONLY = {
    "ask_clarifying_question",
    "finalize_response",
    "create_asset_manifest",
    "inspect_asset",
    "label_asset",
    "map_assets_for_model",
    "validate_asset_references",
    "compose_workflow",
    "compose_workflow_template",
}
UTILITIES = {"image_to_3d", "remove_background", "segment_image"}


def test_surfaces() -> None:
    tools = {tool.name for tool in surface("creative-tools")}
    agent = {tool.name for tool in surface("creative-agent")}
    assert tools == SPEC_MEDIA_TOOLS | COMPOSITION | UTILITIES
    assert agent == tools | AGENT_ONLY
    assert len(definitions("creative-tools")) == len(tools)
    assert surface("none") == []


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_cost_estimate_is_positive_for_default_arguments(name: str) -> None:
    tool = CATALOG[name]
    required = tool.parameters().get("required", [])
    arguments = {field: "x" for field in required if field in ("prompt", "query", "brief")}
    if "videoIndices" in required:
        arguments["videoIndices"] = [0, 1]
    try:
        args = tool.args.model_validate(arguments)
    except ValueError:
        pytest.skip("needs arguments beyond a prompt")
    if name in AGENT_ONLY - {"compose_workflow", "compose_workflow_template"}:
        assert tool.cost(args) == 0  # steering the loop and reading the session is free
    else:
        assert tool.cost(args) > 0


def test_each_tool_declares_its_kind_and_queue() -> None:
    """The kinds decide how the loop runs a call and what a plan may name: media tools are
    queued jobs on the queue of their media, agent tools answer at once, composition tools
    never become steps."""
    kinds = {name: tool.kind for name, tool in CATALOG.items()}
    assert {name for name, kind in kinds.items() if kind == "composition"} == {
        tool.name for tool in composition_tools.TOOLS
    }
    assert kinds["inspect_asset"] == "agent" and kinds["finalize_response"] == "agent"
    assert CATALOG["generate_image"].queue == "image"
    assert CATALOG["stitch_video"].queue == "video"
    assert CATALOG["generate_music"].queue == "audio"
    assert CATALOG["analyze_image"].queue == "analysis"
    assert all(tool.queue in QUEUE_NAMES for tool in CATALOG.values())
