from typing import Any

import pytest

from sogni_intelligence.errors import ServiceError
from sogni_intelligence.tools.catalog import CATALOG
from sogni_intelligence.tools.template_checks import check_template
from sogni_intelligence.tools.template_model import WorkflowTemplate, parse_template
from sogni_intelligence.tools.templates import compile_template, validate_inputs


def template(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Portrait",
        "inputs": [
            {"name": "brief", "type": "text", "required": True},
            {"name": "count", "type": "number", "default": 2},
            {
                "name": "aspect_ratio",
                "type": "select",
                "default": "1:1",
                "options": [{"value": "1:1"}, {"value": "9:16", "label": "Portrait"}],
            },
            {"name": "hd", "type": "boolean"},
            {"name": "photo", "type": "image"},
            {"name": "style", "type": "text", "internal": True, "default": "film"},
            {"name": "shots", "type": "text", "multiple": {"min": 1, "max": 4}},
        ],
        "stages": [
            {
                "type": "fixed",
                "id": "keyframe",
                "tool": "generate_image",
                "args": {"prompt": "$inputs.brief", "numberOfMedia": "$inputs.count"},
            }
        ],
    }
    data.update(overrides)
    return data


def bad(call: Any, *args: Any) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call(*args)
    assert caught.value.status == 400
    return caught.value


# --- the model --------------------------------------------------------------------------------


def test_template_round_trips_camel_case_and_accepts_snake_case() -> None:
    parsed = parse_template(
        template(expose_to_llm=True, estimated_capacity_units={"min": 1, "max": 3}, extra=1)
    )
    assert isinstance(parsed, WorkflowTemplate)
    dumped = parsed.dump()
    assert dumped["exposeToLLM"] is True and dumped["llmPriority"] == 100
    assert dumped["estimatedCapacityUnits"] == {"min": 1, "max": 3}
    assert "extra" not in dumped and dumped["visibility"] == "private"
    assert parse_template(dumped).dump() == dumped


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"category": "nope"}, "category"),
        ({"inputs": [{"name": "bad name", "type": "text"}]}, "inputs.0.name"),
        ({"inputs": [{"name": f"i{n}", "type": "text"} for n in range(17)]}, "inputs"),
        ({"inputs": [{"name": "s", "type": "select"}]}, "inputs.0"),
        ({"inputs": [{"name": "n", "type": "number", "default": "two"}]}, "inputs.0"),
        ({"stages": []}, "stages"),
        ({"stages": [{"type": "fixed", "id": "a", "tool": "t", "onError": "explode"}]}, None),
        ({"stages": [{"type": "loop", "id": "a"}]}, "stages.0"),
    ],
)
def test_invalid_templates_are_400(overrides: dict[str, Any], param: str | None) -> None:
    error = bad(parse_template, template(**overrides))
    assert error.code == "invalid_template"
    if param is not None:
        assert error.param == param


def test_template_rejects_a_placeholder_of_no_input() -> None:
    stages = [{"type": "fixed", "id": "a", "tool": "t", "args": {"p": "$inputs.nope"}}]
    assert "nope" in bad(parse_template, template(stages=stages)).message


# --- inputs -------------------------------------------------------------------------------------


def test_defaults_and_internal_inputs_are_seeded() -> None:
    values = validate_inputs(template(), {"brief": "a cat"})
    assert values == {"brief": "a cat", "count": 2, "aspect_ratio": "1:1", "style": "film"}


def test_required_unknown_and_internal_inputs() -> None:
    assert bad(validate_inputs, template(), {}).param == "inputs.brief"
    error = bad(validate_inputs, template(), {"brief": "x", "mood": "happy"})
    assert error.param == "inputs.mood" and "mood" in error.message
    error = bad(validate_inputs, template(), {"brief": "x", "style": "noir"})
    assert error.param == "inputs.style" and "internal" in error.message
    assert bad(validate_inputs, template(), ["brief"]).param == "inputs"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("brief", 3),
        ("count", "3"),
        ("count", True),
        ("hd", "yes"),
        ("aspect_ratio", "4:3"),
        ("photo", "ftp://host/a.png"),
        ("photo", "not a url"),
        ("brief", ["a", "b"]),
    ],
)
def test_type_checks_name_the_input(name: str, value: Any) -> None:
    inputs = {"brief": "x", name: value}
    error = bad(validate_inputs, template(), inputs)
    assert error.param == f"inputs.{name}" and name in error.message


def test_valid_typed_values_pass() -> None:
    inputs = {
        "brief": "x",
        "count": 1.5,
        "hd": False,
        "aspect_ratio": "9:16",
        "photo": "https://cdn.example.com/p.png",
    }
    assert validate_inputs(template(), inputs)["hd"] is False


def test_media_data_uris_are_rejected() -> None:
    error = bad(validate_inputs, template(), {"brief": "x", "photo": "data:image/png;base64,AA"})
    assert error.param == "inputs.photo" and "data URI" in error.message


def test_multiple_needs_a_list_within_bounds() -> None:
    inputs = [{"name": "refs", "type": "image", "multiple": {"min": 1, "max": 2}}]
    tpl = template(inputs=inputs, stages=[{"type": "fixed", "id": "a", "tool": "t"}])
    url = "https://example.com/a.png"
    assert validate_inputs(tpl, {"refs": [url, url]}) == {"refs": [url, url]}
    assert bad(validate_inputs, tpl, {"refs": url}).param == "inputs.refs"
    assert bad(validate_inputs, tpl, {"refs": []}).param == "inputs.refs"
    assert bad(validate_inputs, tpl, {"refs": [url] * 3}).param == "inputs.refs"
    assert "item 1" in bad(validate_inputs, tpl, {"refs": [url, "data:x"]}).message


def test_json_schema_of_an_input_is_enforced() -> None:
    inputs = [{"name": "code", "type": "text", "jsonSchema": {"type": "string", "maxLength": 3}}]
    tpl = template(inputs=inputs, stages=[{"type": "fixed", "id": "a", "tool": "t"}])
    assert validate_inputs(tpl, {"code": "abc"}) == {"code": "abc"}
    assert bad(validate_inputs, tpl, {"code": "abcd"}).param == "inputs.code"


# --- compilation --------------------------------------------------------------------------------


def test_substitution_keeps_types_and_interpolates_text() -> None:
    stages = [
        {
            "type": "fixed",
            "id": "keyframe",
            "tool": "generate_image",
            "args": {
                "prompt": "A ${inputs.style} shot: $inputs.brief, $inputs.count views, hd=$inputs.hd",
                "numberOfMedia": "$inputs.count",
                "options": {"hd": "$inputs.hd", "tags": ["$inputs.aspect_ratio", "fixed"]},
                "seed": 7,
            },
            "label": "Keyframe",
            "onError": "retry_once",
        }
    ]
    compiled = compile_template(template(stages=stages), {"brief": "a cat", "count": 3, "hd": True})
    assert compiled["title"] == "Portrait"
    assert compiled["steps"] == [
        {
            "id": "keyframe",
            "toolName": "generate_image",
            "arguments": {
                "prompt": "A film shot: a cat, 3 views, hd=true",
                "numberOfMedia": 3,
                "options": {"hd": True, "tags": ["1:1", "fixed"]},
                "seed": 7,
            },
            # retry_once: a second try, then the workflow stops
            "onError": "stop",
            "maxAttempts": 2,
        }
    ]
    assert compiled["media_references"] == []
    assert compiled["inputs"]["count"] == 3


def test_missing_optional_input_drops_exact_placeholders_and_blanks_text() -> None:
    stages = [
        {
            "type": "fixed",
            "id": "a",
            "tool": "generate_image",
            "args": {"hd": "$inputs.hd", "prompt": "x$inputs.hd", "list": ["$inputs.hd", 1]},
        }
    ]
    step = compile_template(template(stages=stages), {"brief": "b"})["steps"][0]
    assert step["arguments"] == {"prompt": "x", "list": [1]}


def test_unknown_placeholder_at_compile_is_400() -> None:
    # A template given as a model built without validation still fails closed at compile time.
    tpl = parse_template(template())
    tpl.stages[0].args["prompt"] = "$inputs.ghost"
    error = bad(compile_template, tpl, {"brief": "b"})
    assert error.code == "unknown_placeholder" and "ghost" in error.message


def test_media_inputs_become_input_media_bindings() -> None:
    inputs = [
        {"name": "photo", "type": "image", "required": True},
        {"name": "refs", "type": "image", "multiple": {"min": 0, "max": 3}},
        {"name": "track", "type": "audio"},
        {"name": "brief", "type": "text", "default": "go"},
    ]
    stages = [
        {
            "type": "fixed",
            "id": "edit",
            "tool": "edit_image",
            "args": {
                "prompt": "$inputs.brief from $inputs.photo",
                "sourceImageIndex": "$inputs.photo",
                "referenceImageIndices": "$inputs.refs",
                "nested": {"url": "$inputs.photo"},
            },
        },
        {
            "type": "fixed",
            "id": "clip",
            "tool": "sound_to_video",
            "args": {"audioSourceIndex": "$inputs.track"},
            "dependsOn": [
                {
                    "sourceStepId": "edit",
                    "targetArgument": "referenceImageIndices",
                    "transform": "image_index",
                    "sourceArtifactIndex": 0,
                }
            ],
        },
    ]
    photo, ref1, ref2, song = (f"https://cdn.example.com/{n}" for n in ("p", "r1", "r2", "s"))
    existing = [{"kind": "image", "url": "https://cdn.example.com/own"}]
    compiled = compile_template(
        template(inputs=inputs, stages=stages),
        {"photo": photo, "refs": [ref1, ref2], "track": song},
        existing_media=existing,
    )
    assert compiled["media_references"] == [
        {"kind": "image", "url": photo, "id": "photo"},
        {"kind": "image", "url": ref1, "id": "refs"},
        {"kind": "image", "url": ref2, "id": "refs"},
        {"kind": "audio", "url": song, "id": "track"},
    ]
    edit, clip = compiled["steps"]
    assert edit["arguments"] == {"prompt": f"go from {photo}", "nested": {"url": photo}}

    def binding(index: int, target: str, kind: str = "image") -> dict[str, Any]:
        return {
            "sourceStepId": "$input_media",
            "sourceArtifactIndex": index,
            "targetArgument": target,
            "transform": f"{kind}_index",
            "mediaType": kind,
            "required": True,
        }

    # The request's own image comes first, so the template's images start at position 1.
    assert edit["dependsOn"] == [
        binding(1, "sourceImageIndex"),
        binding(2, "referenceImageIndices"),
        binding(3, "referenceImageIndices"),
    ]
    assert clip["arguments"] == {}
    assert clip["dependsOn"] == [binding(0, "audioSourceIndex", "audio"), stages[1]["dependsOn"][0]]


def test_optional_media_without_value_gives_no_binding() -> None:
    stages = [{"type": "fixed", "id": "a", "tool": "edit_image", "args": {"img": "$inputs.photo"}}]
    compiled = compile_template(template(stages=stages), {"brief": "b"})
    assert compiled["steps"] == [
        {"id": "a", "toolName": "edit_image", "arguments": {}, "onError": "stop"}
    ]
    assert compiled["media_references"] == []


def test_condition_skips_a_stage_and_its_bindings() -> None:
    stages = [
        {"type": "fixed", "id": "a", "tool": "generate_image", "args": {"prompt": "$inputs.brief"}},
        {"type": "fixed", "id": "up", "tool": "upscale_image", "condition": "$inputs.hd"},
        {
            "type": "fixed",
            "id": "v",
            "tool": "generate_video",
            "dependsOn": [
                {"sourceStepId": "up", "targetArgument": "x", "transform": "image_index"},
                {"sourceStepId": "a", "targetArgument": "y", "transform": "image_index"},
            ],
        },
    ]
    off = compile_template(template(stages=stages), {"brief": "b", "hd": False})["steps"]
    assert [step["id"] for step in off] == ["a", "v"]
    assert [b["sourceStepId"] for b in off[1]["dependsOn"]] == ["a"]
    on = compile_template(template(stages=stages), {"brief": "b", "hd": True})["steps"]
    assert [step["id"] for step in on] == ["a", "up", "v"]
    stages[1]["condition"] = "hd == true"
    assert bad(compile_template, template(stages=stages), {"brief": "b"}).code == (
        "unsupported_condition"
    )


# --- checking stages before a template is stored ----------------------------------------------


def image_stage(stage_id: str = "art", **args: Any) -> dict[str, Any]:
    return {
        "type": "fixed",
        "id": stage_id,
        "tool": "generate_image",
        "args": {"prompt": "x", **args},
    }


def upscale_from(stage_id: str, source: str, **extra: Any) -> dict[str, Any]:
    binding = {
        "sourceStepId": source,
        "targetArgument": "sourceImageIndex",
        "transform": "image_index",
    }
    return {
        "type": "fixed",
        "id": stage_id,
        "tool": "upscale_image",
        "dependsOn": [binding],
        **extra,
    }


def checked(*stages: dict[str, Any], inputs: list[dict[str, Any]] | None = None) -> None:
    overrides: dict[str, Any] = {"stages": list(stages)}
    if inputs is not None:
        overrides["inputs"] = inputs
    check_template(parse_template(template(**overrides)), CATALOG)


def refused(*stages: dict[str, Any], inputs: list[dict[str, Any]] | None = None) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        checked(*stages, inputs=inputs)
    assert caught.value.status == 400 and caught.value.code == "invalid_template"
    return caught.value


@pytest.mark.parametrize(
    ("stage", "param", "words"),
    [
        ({"type": "fixed", "id": "brew", "tool": "make_coffee"}, "stages[1].tool", "make_coffee"),
        (
            {"type": "fixed", "id": "story", "tool": "compose_script", "args": {"prompt": "x"}},
            "stages[1].tool",
            "composition",
        ),
        (image_stage("wide", width=5), "stages[1].args.width", "greater than or equal to 256"),
        (image_stage("typo", numberOfMedia=2), "stages[1].args.numberOfMedia", "numberOfMedia"),
        (upscale_from("up", "ghost"), "stages[1].dependsOn[0].sourceStepId", "ghost"),
        (upscale_from("up", "up"), "stages[1].dependsOn[0].sourceStepId", "not before it"),
        (
            {**image_stage("when"), "condition": "hd == true"},
            "stages[1].condition",
            "placeholder",
        ),
        (
            {"type": "interactive", "id": "chat", "systemPrompt": "Help", "allowedTools": ["brew"]},
            "stages[1].allowedTools[0]",
            "brew",
        ),
        (
            {
                "type": "batch",
                "id": "many",
                "overBinding": "shots",
                "itemName": "i",
                "itemStage": {"tool": "make_coffee"},
            },
            "stages[1].itemStage.tool",
            "make_coffee",
        ),
        (
            {
                "type": "batch",
                "id": "many",
                "overBinding": "shots",
                "itemName": "i",
                "itemStage": {"tool": "compose_lyrics"},
            },
            "stages[1].itemStage.tool",
            "composition",
        ),
    ],
)
def test_stages_that_could_never_run_are_refused_naming_the_stage(
    stage: dict[str, Any], param: str, words: str
) -> None:
    error = refused(image_stage(), stage)
    assert error.param == param
    assert f"'{stage['id']}'" in error.message and words in error.message


def test_a_stage_may_not_depend_on_a_later_one_so_cycles_are_refused() -> None:
    error = refused(upscale_from("a", "b"), upscale_from("b", "a"))
    assert error.param == "stages[0].dependsOn[0].sourceStepId" and "'a'" in error.message
    checked(image_stage("b"), upscale_from("a", "b"))


def test_a_binding_error_points_past_the_bindings_made_for_media_inputs() -> None:
    stage = upscale_from("up", "art", args={"sourceImageIndex": "$inputs.photo"})
    stage["dependsOn"].append(
        {"sourceStepId": "art", "targetArgument": "nope", "transform": "image_index"}
    )
    error = refused(image_stage(), stage)
    assert error.param == "stages[1].dependsOn[1].targetArgument" and "nope" in error.message
    media_into_nothing = {
        "type": "fixed",
        "id": "e",
        "tool": "edit_image",
        "args": {"prompt": "x", "img": "$inputs.photo"},
    }
    error = refused(media_into_nothing)
    assert error.param == "stages[0].args.img" and "'e'" in error.message


def test_placeholders_stand_in_with_their_input_type() -> None:
    inputs = [
        {"name": "brief", "type": "text", "required": True},
        {"name": "size", "type": "number"},
        {"name": "small", "type": "number", "default": 16},
        {"name": "ratio", "type": "select", "options": [{"value": "16:9"}, {"value": "1:1"}]},
        {"name": "photo", "type": "image", "required": True},
        {"name": "refs", "type": "image", "multiple": {"min": 2, "max": 3}},
    ]
    edit = {
        "type": "fixed",
        "id": "edit",
        "tool": "edit_image",
        "args": {
            "prompt": "$inputs.brief in $inputs.ratio",
            "width": "$inputs.size",
            "aspectRatio": "$inputs.ratio",
            "sourceImageIndex": "$inputs.photo",
            "referenceImageIndices": "$inputs.refs",
        },
    }
    # Any number may come for `size`: its stand-in misses width >= 256, which is no fault.
    checked(edit, inputs=inputs)
    # A number is not a prompt, and a default is a value every run may use.
    error = refused({**edit, "args": {**edit["args"], "prompt": "$inputs.size"}}, inputs=inputs)
    assert error.param == "stages[0].args.prompt" and "'edit'" in error.message
    error = refused({**edit, "args": {**edit["args"], "width": "$inputs.small"}}, inputs=inputs)
    assert error.param == "stages[0].args.width"


def test_stages_behind_conditions_and_after_batch_stages_are_checked() -> None:
    inputs = [{"name": "hd", "type": "select", "options": [{"value": False}, {"value": True}]}]
    hidden = {**image_stage("maybe", width=5), "condition": "$inputs.hd"}
    assert refused(hidden, inputs=inputs).param == "stages[0].args.width"
    batch = {
        "type": "batch",
        "id": "many",
        "overBinding": "$inputs.shots",
        "itemName": "shot",
        "itemStage": {"tool": "generate_image", "args": {"prompt": "$shot"}},
    }
    chat = {
        "type": "interactive",
        "id": "chat",
        "systemPrompt": "Help",
        "allowedTools": ["compose_script"],
    }
    checked(image_stage(), batch, chat, upscale_from("up", "many"))
    wrong_target = upscale_from("up", "many")
    wrong_target["dependsOn"][0]["targetArgument"] = "nope"
    assert refused(batch, wrong_target).param == "stages[1].dependsOn[0].targetArgument"


# --- interactive and batch stages, artifacts ---------------------------------------------------


def batch_stage(**extra: Any) -> dict[str, Any]:
    return {
        "type": "batch",
        "id": "many",
        "overBinding": "$inputs.shots",
        "itemName": "shot",
        "itemStage": {"tool": "generate_image", "args": {"prompt": "$inputs.brief: ${shot}"}},
        **extra,
    }


def test_an_interactive_stage_becomes_a_question_every_later_stage_waits_for() -> None:
    chat = {
        "type": "interactive",
        "id": "ask",
        "systemPrompt": "Help the user pick a mood",
        "userMessage": "Which mood for $inputs.brief?",
        "timeoutSeconds": 60,
    }
    stages = [image_stage("first"), chat, image_stage("second")]
    steps = compile_template(template(stages=stages), {"brief": "a cat"})["steps"]
    assert steps[1] == {
        "id": "ask",
        "toolName": "ask_clarifying_question",
        "arguments": {"question": "Which mood for a cat?"},
        "answerTimeoutSeconds": 60,
        "onError": "stop",
    }
    assert "after" not in steps[0] and steps[2]["after"] == ["ask"]


def test_a_batch_stage_fans_out_one_step_per_item_in_order() -> None:
    later = upscale_from("up", "many", dependsOn=None)
    later["dependsOn"] = [
        {"sourceStepId": "many", "targetArgument": "sourceImageIndex", "transform": "image_index"}
    ]
    tpl = template(stages=[batch_stage(partialExecutionEnabled=True, maxAttemptsPerItem=3)])
    steps = compile_template(tpl, {"brief": "cat", "shots": ["sun", "rain"]})["steps"]
    assert [(s["id"], s["arguments"]["prompt"]) for s in steps] == [
        ("many_1", "cat: sun"),
        ("many_2", "cat: rain"),
    ]
    assert all(s["onError"] == "continue" and s["maxAttempts"] == 3 for s in steps)
    stops = compile_template(template(stages=[batch_stage()]), {"brief": "c", "shots": ["a"]})
    assert stops["steps"][0]["onError"] == "stop"


def test_a_batch_of_media_items_binds_each_item_as_request_media() -> None:
    inputs = [{"name": "photos", "type": "image", "multiple": {"min": 1, "max": 3}}]
    stage = {
        "type": "batch",
        "id": "up",
        "overBinding": "photos",
        "itemName": "photo",
        "itemStage": {"tool": "upscale_image", "args": {"sourceImageIndex": "$photo"}},
    }
    urls = ["https://a.example/1.png", "https://a.example/2.png"]
    compiled = compile_template(template(inputs=inputs, stages=[stage]), {"photos": urls})
    assert [s["dependsOn"][0]["sourceArtifactIndex"] for s in compiled["steps"]] == [0, 1]
    assert [r["url"] for r in compiled["media_references"]] == urls
    checked(stage, inputs=inputs)


def test_a_batch_with_too_many_items_or_steps_is_a_400_at_the_start() -> None:
    inputs = [{"name": "shots", "type": "text", "multiple": {"min": 1}}]
    tpl = template(inputs=inputs, stages=[batch_stage(itemStage={"tool": "generate_image"})])
    error = bad(compile_template, tpl, {"shots": ["x"] * 13})
    assert error.code == "batch_too_long" and "'many'" in error.message and "13" in error.message
    two = [batch_stage(), {**batch_stage(), "id": "more"}]
    fixed = [image_stage(name) for name in "abcde"]
    error = bad(
        compile_template, template(stages=[*two, *fixed]), {"brief": "b", "shots": ["x"] * 4}
    )
    assert error.code == "too_many_steps" and "13 steps" in error.message


def test_a_batch_over_an_input_that_is_not_a_list_or_may_be_too_long_is_refused() -> None:
    error = refused(batch_stage(overBinding="brief"))
    assert error.param == "stages[0].overBinding" and "not a list" in error.message
    inputs = [{"name": "shots", "type": "text", "multiple": {"min": 1, "max": 20}}]
    error = refused(batch_stage(itemStage={"tool": "generate_image"}), inputs=inputs)
    assert "'many'" in error.message and "at most 12" in error.message
    assert (
        "no such input"
        in bad(parse_template, template(stages=[batch_stage(overBinding="x")])).message
    )


def test_a_required_artifact_must_be_produced_by_an_earlier_stage() -> None:
    maker = {**image_stage("art"), "produces": ["keyframe"]}
    user = {**upscale_from("up", "art"), "requiredArtifactsIn": ["keyframe"]}
    checked(maker, user)
    error = refused(maker, {**user, "requiredArtifactsIn": ["poster"]})
    assert error.param == "stages[1].requiredArtifactsIn[0]"
    assert "'up'" in error.message and "'poster'" in error.message
    error = refused({**image_stage("x"), "requiredArtifactsIn": ["keyframe"]}, maker)
    assert "'x'" in error.message and "'keyframe'" in error.message
    steps = compile_template(template(stages=[maker, user]), {"brief": "b"})["steps"]
    assert steps[1]["after"] == ["art"]


def test_a_required_artifact_whose_maker_is_switched_off_is_a_400_at_the_start() -> None:
    maker = {**image_stage("art"), "produces": ["keyframe"], "condition": "$inputs.hd"}
    user = {**image_stage("poster"), "requiredArtifactsIn": ["keyframe"]}
    checked(maker, user)
    error = bad(compile_template, template(stages=[maker, user]), {"brief": "b", "hd": False})
    assert error.code == "missing_artifact"
    assert "'poster'" in error.message and "'keyframe'" in error.message


def test_a_stage_may_not_bind_to_an_interactive_stage() -> None:
    chat = {"type": "interactive", "id": "ask", "systemPrompt": "Which one?"}
    error = refused(chat, upscale_from("up", "ask"))
    assert error.param == "stages[1].dependsOn[0].sourceStepId" and "interactive" in error.message


def test_a_later_stage_may_use_an_interactive_stage_answer_and_no_other() -> None:
    chat = {"type": "interactive", "id": "ask", "systemPrompt": "Which mood?"}
    uses = image_stage("art", prompt="a $answers.ask harbour")
    checked(chat, uses)
    step = compile_template(template(stages=[chat, uses]), {"brief": "b"})["steps"][1]
    assert step["arguments"]["prompt"] == "a $answers.ask harbour" and step["after"] == ["ask"]
    error = refused(uses, chat)
    assert error.param == "stages[0].args" and "$answers.ask" in error.message
