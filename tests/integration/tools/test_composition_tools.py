"""The six composition tools on the real default model (SmolLM2-135M): whatever the tiny model
writes, every result has its documented keys, composed workflows pass the workflow planner and
templates pass the template model."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from sogni_intelligence.llm.registry import ModelRegistry
from sogni_intelligence.media.signing import UrlSigner
from sogni_intelligence.media.store import AssetStore
from sogni_intelligence.store.db import Database
from sogni_intelligence.tools.audio_tools import GenerateMusicArgs
from sogni_intelligence.tools.base import ToolContext, ToolServices, execute
from sogni_intelligence.tools.catalog import CATALOG
from sogni_intelligence.tools.media_context import MediaContext
from sogni_intelligence.tools.plan_model import MAX_STEPS
from sogni_intelligence.tools.plans import normalise_plan, plan_cost
from sogni_intelligence.tools.services import text_llm
from sogni_intelligence.tools.template_model import parse_template
from sogni_intelligence.tools.templates import compile_template
from tests.conftest import embedded_settings

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ctx(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ToolContext]:
    data: Path = tmp_path_factory.mktemp("composition")
    registry = ModelRegistry(embedded_settings(data))
    await registry.start()
    db = Database(f"sqlite:///{data / 'tools.sqlite'}")
    await db.create_all()
    store = AssetStore(db, data / "media", UrlSigner(b"k" * 32, "http://media.test", 3600))
    yield ToolContext(
        owner="key_test",
        media=MediaContext(),
        store=store,
        services=ToolServices(text_llm=text_llm(registry)),
    )
    await db.close()
    await registry.close()


async def run(ctx: ToolContext, tool: str, /, **arguments: Any) -> dict[str, Any]:
    return await execute(CATALOG[tool], arguments, ctx)


def _music_args(result: dict[str, Any]) -> GenerateMusicArgs:
    """The suggested parameters as generate_music arguments (they must be accepted as such)."""
    params = result["suggested_params"]
    assert set(params) == {"duration", "bpm", "keyscale", "timesig", "music_prompt"}
    return GenerateMusicArgs(
        prompt=params["music_prompt"],
        duration=params["duration"],
        bpm=params["bpm"],
        keyscale=params["keyscale"],
        timesig=params["timesig"],
    )


async def test_surfaces() -> None:
    both = {"creative-tools", "creative-agent"}
    for name in ("enhance_prompt", "compose_script", "compose_lyrics", "compose_instrumental"):
        assert CATALOG[name].surfaces == both
    for name in ("compose_workflow", "compose_workflow_template"):
        assert CATALOG[name].surfaces == {"creative-agent"}


async def test_enhance_prompt_writes_a_prompt_for_the_named_model(ctx: ToolContext) -> None:
    result = await run(
        ctx,
        "enhance_prompt",
        prompt="a cat on a roof",
        target_output="image_prompt",
        destination_model="z-turbo",
        style_prompt="oil painting",
    )
    assert result["ok"] is True, result
    assert result["tool"] == "enhance_prompt" and result["output_assets"] == []
    assert result["destination_model"] == "z-turbo" and result["target_output"] == "image_prompt"
    assert result["prompt"].strip() and result["prompt"].endswith("oil painting")


async def test_enhance_prompt_compress_shortens_and_payload_fills_tool_arguments(
    ctx: ToolContext,
) -> None:
    long = "a lighthouse on a cliff at dusk with waves crashing and gulls circling " * 3
    short = await run(
        ctx,
        "enhance_prompt",
        prompt=long,
        target_output="video_prompt",
        destination_model="ltx25",
        prompt_mode="compress",
    )
    assert short["ok"] is True, short
    assert 0 < len(short["prompt"]) <= len(long.strip()) // 2
    payload = await run(
        ctx,
        "enhance_prompt",
        prompt="a dancer spins",
        target_output="video_prompt",
        destination_model="wan22",
        prompt_mode="payload",
        duration_seconds=4,
        aspect_ratio="9:16",
    )
    assert payload["ok"] is True, payload
    expected = {"prompt": payload["prompt"], "videoModel": "wan22", "duration": 4.0}
    assert payload["payload"] == {**expected, "aspectRatio": "9:16"}
    CATALOG["generate_video"].args.model_validate(payload["payload"])


async def test_enhance_prompt_validate_checks_reference_tokens(ctx: ToolContext) -> None:
    result = await run(
        ctx,
        "enhance_prompt",
        prompt="@Image1 waves at @Image2 while @Audio1 plays",
        target_output="video_prompt",
        destination_model="seedance2",
        prompt_mode="validate",
        assets=[{"media_type": "image", "label": "hero"}, {"media_type": "audio"}],
    )
    assert result["ok"] is True, result
    assert result["prompt"] == "@Image1 waves at @Image2 while @Audio1 plays"
    assert result["valid"] is False
    assert result["issues"] == ["@Image2 refers to a missing image (there are 1)"]


@pytest.mark.parametrize(
    ("target", "model"),
    [("image_prompt", "no-such-model"), ("image_prompt", "ltx25"), ("video_prompt", "z-turbo")],
)
async def test_enhance_prompt_refuses_a_model_that_is_not_an_exact_selector(
    ctx: ToolContext, target: str, model: str
) -> None:
    result = await run(
        ctx, "enhance_prompt", prompt="x", target_output=target, destination_model=model
    )
    assert result["ok"] is False and result["error_type"] == "PARAMETER_INVALID"
    assert result["message"].startswith("destination_model: unknown")
    known = "z-turbo" if target == "image_prompt" else "ltx25"
    assert known in result["message"]


async def test_compose_script_in_timed_scenes(ctx: ToolContext) -> None:
    result = await run(
        ctx,
        "compose_script",
        brief="an ad for lemonade",
        scene_count=2,
        duration_seconds=10,
        return_format="markdown",
    )
    assert result["ok"] is True, result
    scenes = result["scenes"]
    assert [(s["scene"], s["start_seconds"], s["end_seconds"]) for s in scenes] == [
        (1, 0.0, 5.0),
        (2, 5.0, 10.0),
    ]
    assert all(s["visual"] for s in scenes)
    script = result["script"]
    assert script.startswith(f"# {result['title']}")
    assert "## Scene 1 (0:00-0:05)" in script and "## Scene 2 (0:05-0:10)" in script


async def test_compose_script_as_json_text(ctx: ToolContext) -> None:
    result = await run(
        ctx, "compose_script", brief="a trailer for a space film", return_format="json"
    )
    assert result["ok"] is True, result
    assert "scenes" not in result
    body = json.loads(result["script"])
    assert body["title"] == result["title"] and body["script"].strip()


async def test_compose_lyrics_has_sung_sections_and_usable_music_params(ctx: ToolContext) -> None:
    result = await run(ctx, "compose_lyrics", prompt="summer by the sea", duration_seconds=120)
    assert result["ok"] is True, result
    assert result["sections"] == ["Verse 1", "Chorus", "Verse 2", "Chorus"]
    lyrics = result["lyrics"]
    assert lyrics.startswith("[Verse 1]\n") and lyrics.count("[Chorus]\n") == 2
    music = _music_args(result)
    assert music.duration == 120 and 60 <= music.bpm <= 180 and music.timesig in (3, 4)


async def test_compose_instrumental_sections_cover_the_piece(ctx: ToolContext) -> None:
    result = await run(
        ctx,
        "compose_instrumental",
        prompt="a foggy morning in the mountains",
        music_prompt="ambient piano and strings",
        duration_seconds=90,
    )
    assert result["ok"] is True, result
    sections = result["sections"]
    assert [s["name"] for s in sections] == ["Intro", "Theme A", "Theme B", "Outro"]
    assert sections[0]["start_seconds"] == 0 and sections[-1]["end_seconds"] == 90
    for before, after in itertools.pairwise(sections):
        assert before["start_seconds"] < before["end_seconds"] == after["start_seconds"]
    assert len(result["structure"].splitlines()) == 4
    assert result["structure"].startswith("0:00-")
    assert _music_args(result).prompt == "ambient piano and strings"


async def test_compose_workflow_plan_runs_through_the_planner(ctx: ToolContext) -> None:
    result = await run(
        ctx,
        "compose_workflow",
        brief="a paper boat sails through a rainy city",
        scene_count=3,
        duration_seconds=12,
        aspect_ratio="9:16",
        style="watercolor",
        include_audio=True,
        destination_models={"image": "flux-3-klein", "video": "wan22", "music": "ace_step_1.5_sft"},
    )
    assert result["ok"] is True, result
    steps = result["steps"]
    assert [s["toolName"] for s in steps] == [
        "generate_image",
        "generate_image",
        "generate_image",
        "animate_photo",
        "generate_music",
        "stitch_video",
    ]
    plan = normalise_plan(result)
    assert plan.title == result["title"] and [s.id for s in plan.steps] == [s["id"] for s in steps]
    assert result["estimated_capacity_units"] == plan_cost(plan)
    assert result["estimated_capacity_units"] == round(
        sum(s["estimatedCapacityUnits"] for s in steps), 2
    )
    assert result["fits_budget"] is True and result["scene_count"] == 3
    images, clips, music, final = steps[0], steps[3], steps[4], steps[5]
    assert images["arguments"]["model"] == "flux-3-klein"
    assert images["arguments"]["prompt"].endswith("watercolor")
    assert (images["arguments"]["width"], images["arguments"]["height"]) == (576, 1024)
    assert clips["arguments"]["videoModel"] == "wan22" and clips["arguments"]["duration"] == 4
    assert len(clips["arguments"]["prompts"]) == 3
    assert [b["sourceStepId"] for b in clips["dependsOn"]] == ["scene_1", "scene_2", "scene_3"]
    assert music["arguments"]["model"] == "ace_step_1.5_sft"
    assert music["arguments"]["duration"] == 12
    assert [b["targetArgument"] for b in final["dependsOn"]] == [
        "videoIndices",
        "videoIndices",
        "videoIndices",
        "audioIndex",
    ]


async def test_compose_workflow_drops_scenes_to_fit_the_budget(ctx: ToolContext) -> None:
    # 4 scenes of 5 s: 4 pictures + 20 s of clips + the stitch = 25 units; 2 scenes = 13.5.
    result = await run(
        ctx,
        "compose_workflow",
        brief="a paper boat",
        scene_count=4,
        max_estimated_capacity_units=14,
    )
    assert result["ok"] is True, result
    assert result["scene_count"] == 2 and result["fits_budget"] is True
    assert result["estimated_capacity_units"] == 13.5
    assert any("budget" in warning for warning in result["warnings"])
    normalise_plan(result)

    over = await run(
        ctx, "compose_workflow", brief="a paper boat", scene_count=2, max_estimated_capacity_units=1
    )
    assert over["ok"] is True, over
    assert over["scene_count"] == 1 and over["fits_budget"] is False
    assert over["estimated_capacity_units"] > 1
    normalise_plan(over)


async def test_compose_workflow_keeps_within_the_step_limit(ctx: ToolContext) -> None:
    result = await run(
        ctx, "compose_workflow", brief="a day in a city", scene_count=12, include_audio=True
    )
    assert result["ok"] is True, result
    assert result["scene_count"] == 9 and len(result["steps"]) == MAX_STEPS
    assert result["warnings"] == ["12 scenes need more than 12 workflow steps; planned 9"]
    normalise_plan(result)


@pytest.mark.parametrize(
    ("models", "argument"),
    [
        ({"image": "dall-e"}, "destination_models.image"),
        ({"video": "seedance2"}, "destination_models.video"),
        ({"music": "suno"}, "destination_models.music"),
    ],
)
async def test_compose_workflow_refuses_models_it_cannot_plan_with(
    ctx: ToolContext, models: dict[str, str], argument: str
) -> None:
    result = await run(ctx, "compose_workflow", brief="x", destination_models=models)
    assert result["ok"] is False and result["error_type"] == "PARAMETER_INVALID"
    assert result["message"].startswith(f"{argument}: ")


async def test_compose_workflow_template_draft_is_a_valid_template(ctx: ToolContext) -> None:
    result = await run(
        ctx,
        "compose_workflow_template",
        brief="a teaser for a new product",
        name="Product teaser",
        scene_count=2,
        category="video-social",
        inputs=[
            {"name": "product", "type": "text", "required": True, "description": "What to show"},
            {"name": "logo", "type": "image"},
        ],
    )
    assert result["ok"] is True, result
    draft = result["template_draft"]
    template = parse_template(draft)
    assert template.name == "Product teaser" and template.category == "video-social"
    assert "id" not in draft and "author" not in draft
    assert [stage["id"] for stage in draft["stages"]] == ["scene_1", "scene_2", "clips", "final"]
    assert any("logo" in warning for warning in result["warnings"])
    compiled = compile_template(draft, {"product": "a red watch"})
    plan = normalise_plan({"title": compiled["title"], "steps": compiled["steps"]})
    assert plan.step("scene_1").arguments["prompt"].endswith(". a red watch")
    assert result["plan"]["steps"] and normalise_plan(result["plan"])
    estimate = result["plan"]["estimated_capacity_units"]
    assert draft["estimatedCapacityUnits"] == {"min": estimate, "max": estimate}


async def test_compose_workflow_template_revises_an_existing_template(ctx: ToolContext) -> None:
    existing = {
        "id": "tpl_old",
        "name": "Old",
        "tags": ["promo"],
        "visibility": "public",
        "stages": [{"type": "fixed", "id": "a", "tool": "generate_image", "args": {"prompt": "x"}}],
    }
    result = await run(
        ctx,
        "compose_workflow_template",
        brief="a sunrise",
        name="New",
        scene_count=1,
        existing_template=existing,
    )
    assert result["ok"] is True, result
    draft = result["template_draft"]
    assert draft["name"] == "New" and draft["tags"] == ["promo"]
    assert draft["visibility"] == "public" and draft["metadata"]["revisionOf"] == "tpl_old"
    assert [stage["id"] for stage in draft["stages"]] == ["scene_1", "clips"]

    broken = await run(
        ctx, "compose_workflow_template", brief="x", name="N", existing_template={"name": "x"}
    )
    assert broken["ok"] is False and broken["error_type"] == "PARAMETER_INVALID"
    assert broken["message"].startswith("existing_template: ")


async def test_without_a_text_model_the_tools_say_so(ctx: ToolContext) -> None:
    bare = ToolContext(owner=ctx.owner, media=MediaContext(), store=ctx.store)
    result = await run(bare, "compose_lyrics", prompt="rain")
    assert result["ok"] is False and result["error_type"] == "MODEL_UNAVAILABLE"
