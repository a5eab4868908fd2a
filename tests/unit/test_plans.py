import pytest

from sogni_intelligence.errors import ServiceError
from sogni_intelligence.tools.catalog import CATALOG
from sogni_intelligence.tools.plan_bindings import (
    cues_to_srt,
    execution_order,
    resolve_arguments,
    srt_to_cues,
)
from sogni_intelligence.tools.plan_model import (
    STAND_IN_URL,
    ArtifactRef,
    BindingError,
    InputMediaRef,
    Plan,
    StepOutput,
)
from sogni_intelligence.tools.plans import normalise_plan, plan_cost, step_costs, step_tool_names

SPEC_EXAMPLE = {
    "title": "Generated keyframe to video",
    "steps": [
        {
            "id": "keyframe",
            "toolName": "generate_image",
            "arguments": {"prompt": "a lighthouse", "width": 1024, "height": 576},
        },
        {
            "id": "clip",
            "toolName": "generate_video",
            "arguments": {"prompt": "waves roll in", "duration": 5},
            "dependsOn": [
                {
                    "sourceStepId": "keyframe",
                    "sourceArtifactIndex": 0,
                    "targetArgument": "referenceImageIndices",
                    "mediaType": "image",
                    "transform": "image_index",
                    "required": True,
                }
            ],
        },
    ],
}


def _step(tool: str, step_id: str | None = None, depends=None, **arguments) -> dict:
    step: dict = {"toolName": tool, "arguments": arguments}
    if step_id is not None:
        step["id"] = step_id
    if depends is not None:
        step["dependsOn"] = depends
    return step


def _bind(source: str, target: str, transform: str, **extra) -> dict:
    return {"sourceStepId": source, "targetArgument": target, "transform": transform, **extra}


def _error(raw, refs=None) -> ServiceError:
    with pytest.raises(ServiceError) as info:
        normalise_plan(raw, refs)
    assert info.value.status == 400
    assert info.value.type == "invalid_request_error"
    return info.value


IMG = "https://cdn.example/a.png"


# --- normalisation ----------------------------------------------------------------------------


def test_spec_example_normalises() -> None:
    plan = normalise_plan(SPEC_EXAMPLE, [])
    assert plan.title == "Generated keyframe to video"
    assert [(s.id, s.sequence, s.toolName) for s in plan.steps] == [
        ("keyframe", 0, "generate_image"),
        ("clip", 1, "generate_video"),
    ]
    binding = plan.steps[1].dependsOn[0]
    assert binding.sourceStepId == "keyframe"
    assert binding.transform == "image_index"
    assert binding.required is True
    # The bound argument is filled at run time, not at validation.
    assert "referenceImageIndices" not in plan.steps[1].arguments


def test_default_title_and_missing_arguments() -> None:
    plan = normalise_plan({"steps": [{"toolName": "remove_background"}]})
    assert plan.title == "Durable creative workflow"
    assert plan.steps[0].arguments == {}
    assert plan.mediaReferences == []


@pytest.mark.parametrize("steps", [None, [], "x"])
def test_at_least_one_step(steps) -> None:
    error = _error({"steps": steps})
    assert error.message == "Durable workflow requires at least one step"
    assert error.param == "input.steps"


def test_at_most_twelve_steps() -> None:
    steps = [_step("generate_image", prompt="p")] * 13
    assert _error({"steps": steps}).message == "Durable workflow supports at most 12 steps"
    assert len(normalise_plan({"steps": steps[:12]}).steps) == 12


@pytest.mark.parametrize("tool", ["compose_script", "enhance_prompt", "no_such_tool"])
def test_unsupported_tool(tool) -> None:
    error = _error({"steps": [_step("generate_image", prompt="p"), _step(tool)]})
    assert error.message == f"Unsupported hosted tool: {tool}"
    assert error.param == "input.steps[1].toolName"


def test_step_tool_set_comes_from_the_catalog() -> None:
    names = step_tool_names()
    assert {"generate_image", "analyze_image", "extract_metadata", "remove_background"} <= names
    assert {"image_to_3d", "segment_image", "add_subtitles", "upscale_video"} <= names
    assert names <= set(CATALOG)
    assert not any(name.startswith("compose_") for name in names)


@pytest.mark.parametrize("arguments", [[], "prompt", 3, None])
def test_arguments_must_be_an_object(arguments) -> None:
    steps = [
        _step("generate_image", prompt="p"),
        {"toolName": "generate_image", "arguments": arguments},
    ]
    error = _error({"steps": steps})
    assert error.message == "Workflow step 2 requires object arguments"
    assert error.param == "input.steps[1].arguments"


def test_step_ids_default_normalise_and_deduplicate() -> None:
    plan = normalise_plan(
        {
            "steps": [
                _step("generate_image", prompt="p"),
                _step("generate_image", prompt="p"),
                _step("generate_image", "my step/1", prompt="p"),
                _step("generate_image", "ok-id_2", prompt="p"),
                _step("generate_image", "ok-id_2", prompt="p"),
                _step("generate_image", "", prompt="p"),
            ]
        }
    )
    assert [s.id for s in plan.steps] == [
        "generate_image",
        "generate_image_2",
        "my_step_1",
        "ok-id_2",
        "ok-id_2_5",
        "generate_image_6",
    ]
    assert [s.sequence for s in plan.steps] == list(range(6))


def test_binding_to_a_renamed_step_id_uses_the_same_normalisation() -> None:
    plan = normalise_plan(
        {
            "steps": [
                _step("generate_image", "key frame", prompt="p"),
                _step(
                    "animate_photo",
                    depends=[_bind("key frame", "sourceImageIndex", "image_index")],
                    prompt="p",
                ),
            ]
        }
    )
    assert plan.steps[1].dependsOn[0].sourceStepId == "key_frame"
    assert execution_order(plan) == [["key_frame"], ["animate_photo"]]


def test_unknown_source_step() -> None:
    error = _error(
        {
            "steps": [
                _step("generate_image", "a", prompt="p"),
                _step("animate_photo", "b", [_bind("zzz", "sourceImageIndex", "image_index")]),
            ]
        }
    )
    assert "unknown step 'zzz'" in error.message
    assert error.param == "input.steps[1].dependsOn[0].sourceStepId"


def test_self_reference() -> None:
    error = _error(
        {"steps": [_step("upscale_image", "a", [_bind("a", "sourceImageIndex", "image_index")])]}
    )
    assert "cannot depend on itself" in error.message


def test_cycle_names_the_steps() -> None:
    error = _error(
        {
            "steps": [
                _step("upscale_image", "a", [_bind("c", "sourceImageIndex", "image_index")]),
                _step("upscale_image", "b", [_bind("a", "sourceImageIndex", "image_index")]),
                _step("upscale_image", "c", [_bind("b", "sourceImageIndex", "image_index")]),
                _step("generate_image", "d", prompt="p"),
            ]
        }
    )
    assert "cycle" in error.message
    assert "a -> c -> b -> a" in error.message
    assert "d" not in error.message.split(":")[-1]


def test_later_step_may_be_a_source() -> None:
    plan = normalise_plan(
        {
            "steps": [
                _step("upscale_image", "up", [_bind("gen", "sourceImageIndex", "image_index")]),
                _step("generate_image", "gen", prompt="p"),
            ]
        }
    )
    assert execution_order(plan) == [["gen"], ["up"]]


def test_unknown_target_argument() -> None:
    error = _error(
        {
            "steps": [
                _step("generate_image", "a", prompt="p"),
                _step("upscale_image", "b", [_bind("a", "imageIndex", "image_index")]),
            ]
        }
    )
    assert "upscale_image has no argument 'imageIndex'" in error.message
    assert error.param == "input.steps[1].dependsOn[0].targetArgument"


def test_bad_binding_fields() -> None:
    error = _error(
        {
            "steps": [
                _step("generate_image", "a", prompt="p"),
                _step("upscale_image", "b", [_bind("a", "sourceImageIndex", "image_pixels")]),
            ]
        }
    )
    assert error.param == "input.steps[1].dependsOn[0].transform"
    error = _error(
        {
            "steps": [
                _step("generate_image", "a", prompt="p"),
                _step(
                    "upscale_image",
                    "b",
                    [_bind("a", "sourceImageIndex", "image_index", sourceArtifactIndex=-1)],
                ),
            ]
        }
    )
    assert error.param == "input.steps[1].dependsOn[0].sourceArtifactIndex"
    error = _error(
        {
            "steps": [
                _step("generate_image", "a", prompt="p"),
                _step(
                    "upscale_image",
                    "b",
                    [_bind("a", "sourceImageIndex", "image_index", mediaType="video")],
                ),
            ]
        }
    )
    assert "needs mediaType image" in error.message


def test_scalar_argument_bound_twice() -> None:
    error = _error(
        {
            "steps": [
                _step("generate_image", "a", prompt="p"),
                _step(
                    "upscale_image",
                    "b",
                    [
                        _bind("a", "sourceImageIndex", "image_index"),
                        _bind("a", "sourceImageIndex", "image_index", sourceArtifactIndex=1),
                    ],
                ),
            ]
        }
    )
    assert "more than once" in error.message


def test_bad_argument_names_step_and_argument() -> None:
    error = _error(
        {
            "steps": [
                _step("generate_image", "first", prompt="p"),
                _step("generate_image", "second", prompt="p", width="wide"),
            ]
        }
    )
    assert "'second'" in error.message and "'width'" in error.message
    assert error.param == "input.steps[1].arguments.width"


def test_unknown_argument_and_missing_required_argument() -> None:
    error = _error({"steps": [_step("generate_image", "g", prompt="p", colour="red")]})
    assert error.param == "input.steps[0].arguments.colour"
    error = _error({"steps": [_step("generate_image", "g", width=512)]})
    assert error.param == "input.steps[0].arguments.prompt"


def test_bound_arguments_are_validated_with_stand_ins() -> None:
    # stitch_video needs >= 2 videoIndices: two bindings supply them.
    plan = normalise_plan(
        {
            "steps": [
                _step("generate_video", "v1", prompt="p"),
                _step("generate_video", "v2", prompt="p"),
                _step(
                    "stitch_video",
                    "s",
                    [
                        _bind("v1", "videoIndices", "video_index"),
                        _bind("v2", "videoIndices", "video_index"),
                    ],
                ),
            ]
        }
    )
    assert plan.steps[2].arguments == {}
    # A bound argument stands in for its value; the rest of the arguments are still checked.
    error = _error(
        {
            "steps": [
                _step("generate_image", "a", prompt="p"),
                _step("animate_photo", "b", [_bind("a", "sourceImageIndex", "image_index")]),
            ]
        }
    )
    assert error.param == "input.steps[1].arguments.prompt"
    # A URL into an index argument is a type mismatch.
    error = _error(
        {
            "steps": [
                _step("generate_image", "a", prompt="p"),
                _step("upscale_image", "b", [_bind("a", "sourceImageIndex", "image_url")]),
            ]
        }
    )
    assert error.param == "input.steps[1].arguments.sourceImageIndex"
    # Subtitles: cues satisfy add_subtitles' "cues or srt" rule.
    normalise_plan(
        {
            "steps": [
                _step("generate_video", "v", prompt="p"),
                _step("analyze_video", "t", query="transcribe"),
                _step(
                    "add_subtitles",
                    "sub",
                    [
                        _bind("v", "sourceVideoIndex", "video_index"),
                        _bind("t", "cues", "subtitle_cues"),
                    ],
                ),
            ]
        }
    )


def test_upload_position_argument_must_bind_input_media() -> None:
    error = _error(
        {
            "steps": [
                _step("generate_music", "m", prompt="p"),
                _step(
                    "sound_to_video",
                    "s",
                    [_bind("m", "audioSourceIndex", "audio_index")],
                    prompt="p",
                ),
            ]
        }
    )
    assert "upload position" in error.message


# --- media references -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "param"),
    [
        ({"kind": "image", "url": "data:image/png;base64,AAAA"}, "media_references[1].url"),
        ({"kind": "image", "value": "data:image/png;base64,AAAA"}, "media_references[1].value"),
        ({"kind": "image", "data": "DATA:image/png;base64,AAAA"}, "media_references[1].data"),
        ({"kind": "image", "dataUri": "data:image/png;base64,AAAA"}, "media_references[1].dataUri"),
        ({"kind": "image", "data_uri": "data:image/png;base64,A"}, "media_references[1].data_uri"),
    ],
)
def test_data_uri_media_references_rejected(reference, param) -> None:
    error = _error(SPEC_EXAMPLE, [{"kind": "image", "url": IMG}, reference])
    assert "http(s)" in error.message and "data URI" in error.message
    assert error.param == param


@pytest.mark.parametrize(
    "reference",
    [
        {"kind": "image", "url": "ftp://x/a.png"},
        {"kind": "image"},
        {"kind": "text", "url": IMG},
        "x",
    ],
)
def test_other_bad_media_references(reference) -> None:
    error = _error(SPEC_EXAMPLE, [reference])
    assert error.param.startswith("media_references[0]")


def test_media_references_echoed() -> None:
    refs = [{"kind": "image", "url": IMG, "flag": "--ref"}, {"id": "input-1", "value": IMG}]
    assert normalise_plan(SPEC_EXAMPLE, refs).mediaReferences == refs


def test_input_media_binding_needs_a_reference_of_that_type() -> None:
    plan_input = {
        "steps": [
            _step(
                "animate_photo",
                "anim",
                [
                    _bind(
                        "$input_media",
                        "sourceImageIndex",
                        "image_index",
                        sourceArtifactIndex=1,
                        mediaType="image",
                    )
                ],
                prompt="p",
            )
        ]
    }
    refs = [
        {"kind": "image", "url": IMG},
        {"kind": "audio", "url": "https://cdn.example/a.mp3"},
    ]
    error = _error(plan_input, refs)
    assert "image media reference 1" in error.message and "has 1" in error.message
    assert error.param == "input.steps[0].dependsOn[0].sourceArtifactIndex"
    # A second image (kind inferred from the extension) makes it valid.
    plan = normalise_plan(plan_input, [*refs, {"url": "https://cdn.example/b.JPG?sig=1"}])
    assert execution_order(plan) == [["anim"]]
    # Not required: accepted even when absent.
    plan_input["steps"][0]["dependsOn"][0]["required"] = False
    normalise_plan(plan_input, refs)


# --- execution order --------------------------------------------------------------------------


def test_waves_for_a_diamond() -> None:
    plan = normalise_plan(
        {
            "steps": [
                _step("generate_image", "top", prompt="p"),
                _step("generate_music", "music", prompt="p"),
                _step(
                    "animate_photo",
                    "left",
                    [_bind("top", "sourceImageIndex", "image_index")],
                    prompt="p",
                ),
                _step(
                    "animate_photo",
                    "right",
                    [_bind("top", "sourceImageIndex", "image_index")],
                    prompt="p",
                ),
                _step(
                    "stitch_video",
                    "bottom",
                    [
                        _bind("right", "videoIndices", "video_index"),
                        _bind("left", "videoIndices", "video_index"),
                        _bind("music", "audioIndex", "audio_index"),
                    ],
                ),
            ]
        }
    )
    assert execution_order(plan) == [["top", "music"], ["left", "right"], ["bottom"]]


def test_independent_steps_keep_sequence_order() -> None:
    plan = normalise_plan(
        {"steps": [_step("generate_image", name, prompt="p") for name in ("z", "a", "m")]}
    )
    assert execution_order(plan) == [["z", "a", "m"]]


# --- run-time bindings ------------------------------------------------------------------------


def _plan_with(tool: str, bindings: list[dict], refs=None, sources=("src",), **arguments) -> Plan:
    steps = [_step("generate_image", name, prompt="p") for name in sources]
    steps.append(_step(tool, "target", bindings, **arguments))
    return normalise_plan({"steps": steps}, refs)


def _done(*artifacts: ArtifactRef) -> StepOutput:
    return StepOutput(status="completed", artifacts=list(artifacts))


def test_spec_example_resolves_to_the_artifact_index() -> None:
    plan = normalise_plan(SPEC_EXAMPLE)
    outputs = {"keyframe": _done(ArtifactRef(id="a1", kind="image", url=IMG, index=3))}
    resolved = resolve_arguments(plan.step("clip"), outputs, [])
    assert resolved == {"prompt": "waves roll in", "duration": 5, "referenceImageIndices": [3]}
    assert plan.step("clip").arguments == {"prompt": "waves roll in", "duration": 5}


def test_array_bindings_append_in_depends_on_order() -> None:
    refs = [
        {"kind": "video", "url": "https://cdn.example/1.mp4"},
        {"kind": "video", "url": "https://cdn.example/2.mp4"},
    ]
    bindings = [
        _bind("b", "videoIndices", "video_index"),
        _bind("a", "videoIndices", "video_index"),
        _bind("$input_media", "videoIndices", "video_index", sourceArtifactIndex=1),
    ]
    steps = [
        _step("generate_video", "a", prompt="p"),
        _step("generate_video", "b", prompt="p"),
        _step("stitch_video", "target", bindings, videoIndices=[7]),
    ]
    plan = normalise_plan({"steps": steps}, refs)
    outputs = {
        "a": _done(ArtifactRef(id="va", kind="video", url="https://x/a.mp4", index=0)),
        "b": _done(ArtifactRef(id="vb", kind="video", url="https://x/b.mp4", index=1)),
    }
    media = [
        InputMediaRef(kind="video", url="https://cdn.example/1.mp4", index=-1),
        InputMediaRef(kind="video", url="https://cdn.example/2.mp4", index=-2),
    ]
    assert resolve_arguments(plan.step("target"), outputs, media) == {"videoIndices": [7, 1, 0, -2]}
    assert step_costs(plan)["target"] == CATALOG["stitch_video"].cost(
        CATALOG["stitch_video"].args(videoIndices=[7, 0, 0, -2])
    )


def test_input_media_index_mapping_per_media_type() -> None:
    refs = [
        {"kind": "audio", "url": "https://cdn.example/song.mp3"},
        {"kind": "image", "url": "https://cdn.example/one.png"},
        {"kind": "video", "url": "https://cdn.example/clip.mp4"},
        {"kind": "image", "url": "https://cdn.example/two.png"},
    ]
    plan = normalise_plan(
        {
            "steps": [
                _step(
                    "edit_image",
                    "edit",
                    [
                        _bind("$input_media", "sourceImageIndex", "image_index", mediaType="image"),
                        _bind(
                            "$input_media",
                            "referenceImageIndices",
                            "image_index",
                            sourceArtifactIndex=1,
                        ),
                        _bind("$input_media", "referenceImageIndices", "image_index"),
                    ],
                    prompt="p",
                ),
                _step(
                    "sound_to_video",
                    "stv",
                    [
                        _bind("$input_media", "audioSourceIndex", "audio_index"),
                        _bind(
                            "$input_media", "sourceImageIndex", "image_index", sourceArtifactIndex=1
                        ),
                    ],
                    prompt="p",
                ),
                _step(
                    "generate_speech",
                    "speech",
                    [_bind("$input_media", "voice_source_url", "audio_url")],
                    prompt="hi",
                    model="clone",
                ),
            ]
        },
        refs,
    )
    media = [
        InputMediaRef(kind="audio", url="https://cdn.example/song.mp3", index=-1),
        InputMediaRef(kind="image", url="https://cdn.example/one.png", index=-1),
        InputMediaRef(kind="video", url="https://cdn.example/clip.mp4", index=-1),
        InputMediaRef(kind="image", url="https://cdn.example/two.png", index=-2),
    ]
    edit = resolve_arguments(plan.step("edit"), {}, media)
    assert edit == {"prompt": "p", "sourceImageIndex": -1, "referenceImageIndices": [-2, -1]}
    # 0-based upload positions for sound_to_video's documented exceptions.
    stv = resolve_arguments(plan.step("stv"), {}, media)
    assert stv == {"prompt": "p", "audioSourceIndex": 0, "sourceImageIndex": 1}
    speech = resolve_arguments(plan.step("speech"), {}, media)
    assert speech["voice_source_url"] == "https://cdn.example/song.mp3"


def test_input_media_by_reference_id() -> None:
    refs = [{"id": "input-1", "url": IMG}, {"id": "input-2", "url": "https://cdn.example/b.png"}]
    plan = normalise_plan(
        {
            "steps": [
                _step(
                    "upscale_image",
                    "u",
                    [
                        _bind(
                            "$input_media",
                            "sourceImageIndex",
                            "image_index",
                            sourceArtifactId="input-2",
                        )
                    ],
                )
            ]
        },
        refs,
    )
    media = [
        InputMediaRef(kind="image", url=IMG, index=-1, id="input-1"),
        InputMediaRef(kind="image", url="https://cdn.example/b.png", index=-2, id="input-2"),
    ]
    assert resolve_arguments(plan.steps[0], {}, media) == {"sourceImageIndex": -2}
    bad = {
        "steps": [
            {
                **plan.steps[0].model_dump(),
                "dependsOn": [
                    _bind(
                        "$input_media", "sourceImageIndex", "image_index", sourceArtifactId="nope"
                    )
                ],
            }
        ]
    }
    assert "'nope'" in _error(bad, refs).message


@pytest.mark.parametrize(
    ("tool", "target", "transform", "artifact", "expected", "arguments"),
    [
        (
            "generate_speech",
            "voice_source_url",
            "artifact_url",
            ("audio", "https://x/a.wav", 0),
            "https://x/a.wav",
            {"prompt": "hi"},
        ),
        (
            "generate_speech",
            "voice_source_url",
            "audio_url",
            ("audio", "https://x/a.wav", 0),
            "https://x/a.wav",
            {"prompt": "hi"},
        ),
        (
            "generate_speech",
            "voice_source_url",
            "artifact_data_uri",
            ("audio", "https://x/a.wav", 0),
            "https://x/a.wav",
            {"prompt": "hi"},
        ),
        ("upscale_image", "sourceImageIndex", "image_index", ("image", IMG, 4), 4, {}),
        ("upscale_video", "videoIndex", "video_index", ("video", "https://x/v.mp4", 2), 2, {}),
        (
            "stitch_video",
            "audioIndex",
            "audio_index",
            ("audio", "https://x/a.wav", 1),
            1,
            {"videoIndices": [0, 1]},
        ),
    ],
)
def test_url_and_index_transforms(tool, target, transform, artifact, expected, arguments) -> None:
    plan = _plan_with(tool, [_bind("src", target, transform)], **arguments)
    kind, url, index = artifact
    outputs = {"src": _done(ArtifactRef(id="art", kind=kind, url=url, index=index))}
    assert resolve_arguments(plan.step("target"), outputs, [])[target] == expected


def test_url_transforms_for_image_and_video() -> None:
    # No catalog tool takes an image or video URL yet; resolve on a hand-built step.
    from sogni_intelligence.tools.plan_model import Binding, PlanStep

    step = PlanStep(
        id="t",
        sequence=1,
        toolName="generate_speech",
        arguments={"prompt": "x"},
        dependsOn=[
            Binding(sourceStepId="src", targetArgument="voice_source_url", transform="image_url"),
        ],
    )
    outputs = {
        "src": _done(
            ArtifactRef(id="v", kind="video", url="https://x/v.mp4", index=0),
            ArtifactRef(id="i", kind="image", url="https://x/last.png", index=5),
        )
    }
    # image_url counts only the image artifacts: number 0 is the last frame.
    assert resolve_arguments(step, outputs)["voice_source_url"] == "https://x/last.png"
    step.dependsOn[0].transform = "video_url"
    assert resolve_arguments(step, outputs)["voice_source_url"] == "https://x/v.mp4"
    step.dependsOn[0].transform = "asset_ref"
    step.dependsOn[0].sourceArtifactId = "i"
    assert resolve_arguments(step, outputs)["voice_source_url"] == {
        "asset_id": "i",
        "url": "https://x/last.png",
    }


def test_asset_ref_into_a_string_argument_is_refused_at_validation() -> None:
    error = _error(
        {
            "steps": [
                _step("generate_music", "m", prompt="p"),
                _step(
                    "generate_speech",
                    "s",
                    [_bind("m", "voice_source_url", "asset_ref")],
                    prompt="x",
                ),
            ]
        }
    )
    assert error.param == "input.steps[1].arguments.voice_source_url"


def test_source_artifact_index_and_id() -> None:
    plan = _plan_with(
        "edit_image",
        [
            _bind("src", "referenceImageIndices", "image_index", sourceArtifactIndex=1),
            _bind("src", "referenceImageIndices", "image_index", sourceArtifactId="first"),
        ],
        prompt="p",
    )
    outputs = {
        "src": _done(
            ArtifactRef(id="first", kind="image", url=IMG, index=10),
            ArtifactRef(id="second", kind="image", url=IMG, index=11),
        )
    }
    assert resolve_arguments(plan.step("target"), outputs)["referenceImageIndices"] == [11, 10]


CUES = [{"start": 0.0, "end": 1.5, "text": "Hello"}, {"start": 2.0, "end": 3.25, "text": "there"}]


@pytest.mark.parametrize(
    ("transform", "target", "data", "expected"),
    [
        ("subtitle_cues", "cues", CUES, CUES),
        ("subtitle_cues", "cues", {"cues": CUES}, CUES),
        ("subtitle_cues", "cues", cues_to_srt(CUES), CUES),
        ("subtitle_srt", "srt", cues_to_srt(CUES), cues_to_srt(CUES)),
        ("subtitle_srt", "srt", {"cues": CUES}, cues_to_srt(CUES)),
        ("subtitle_srt", "srt", CUES, cues_to_srt(CUES)),
    ],
)
def test_subtitle_transforms(transform, target, data, expected) -> None:
    plan = _plan_with("add_subtitles", [_bind("src", target, transform)], sources=("src",))
    outputs = {"src": _done(ArtifactRef(id="t", kind="text", data=data))}
    assert resolve_arguments(plan.step("target"), outputs) == {target: expected}


def test_overlay_items_transform() -> None:
    overlays = [{"kind": "text", "text": "SALE", "position": "top"}]
    plan = _plan_with(
        "overlay_video",
        [
            _bind("src", "overlays", "overlay_items"),
            _bind("src", "sourceVideoIndex", "video_index"),
        ],
    )
    outputs = {
        "src": _done(
            ArtifactRef(id="v", kind="video", url="https://x/v.mp4", index=0),
            ArtifactRef(id="o", kind="json", data={"overlays": overlays}),
        )
    }
    # overlay_items has no media type, so artifact number 0 is the video: name the payload.
    plan.step("target").dependsOn[0].sourceArtifactId = "o"
    assert resolve_arguments(plan.step("target"), outputs) == {
        "overlays": overlays,
        "sourceVideoIndex": 0,
    }


def test_srt_round_trip() -> None:
    text = cues_to_srt(CUES)
    assert text.startswith("1\n00:00:00,000 --> 00:00:01,500\nHello\n")
    assert srt_to_cues(text) == CUES
    assert srt_to_cues("1\r\n00:01:02.5 --> 00:01:03,000\r\nline one\r\nline two\r\n") == [
        {"start": 62.5, "end": 63.0, "text": "line one\nline two"}
    ]


@pytest.mark.parametrize(
    "output",
    [
        None,
        StepOutput(status="failed"),
        StepOutput(status="skipped"),
        StepOutput(status="completed", artifacts=[]),
        StepOutput(status="completed", artifacts=[ArtifactRef(id="v", kind="video", index=0)]),
    ],
)
def test_required_missing_source_fails_optional_is_dropped(output) -> None:
    plan = _plan_with(
        "edit_image",
        [_bind("src", "referenceImageIndices", "image_index")],
        prompt="p",
        referenceImageIndices=[-1],
    )
    outputs = {} if output is None else {"src": output}
    with pytest.raises(BindingError) as info:
        resolve_arguments(plan.step("target"), outputs)
    assert info.value.step_id == "target"
    assert "referenceImageIndices" in info.value.message
    plan.step("target").dependsOn[0].required = False
    assert resolve_arguments(plan.step("target"), outputs) == {
        "prompt": "p",
        "referenceImageIndices": [-1],
    }


def test_missing_payload_or_index_is_missing() -> None:
    plan = _plan_with("add_subtitles", [_bind("src", "cues", "subtitle_cues")])
    outputs = {"src": _done(ArtifactRef(id="t", kind="text", data=None))}
    with pytest.raises(BindingError, match="carries no subtitle cues"):
        resolve_arguments(plan.step("target"), outputs)
    plan = _plan_with("upscale_image", [_bind("src", "sourceImageIndex", "image_index")])
    outputs = {"src": _done(ArtifactRef(id="i", kind="image", url=IMG))}
    with pytest.raises(BindingError, match="no media index"):
        resolve_arguments(plan.step("target"), outputs)


def test_missing_input_media_at_run_time() -> None:
    plan = normalise_plan(
        {
            "steps": [
                _step(
                    "upscale_image",
                    "u",
                    [_bind("$input_media", "sourceImageIndex", "image_index")],
                )
            ]
        },
        [{"kind": "image", "url": IMG}],
    )
    with pytest.raises(BindingError, match="no image media reference 0"):
        resolve_arguments(plan.steps[0], {}, [])


# --- cost -------------------------------------------------------------------------------------


def test_cost_sums_steps() -> None:
    plan = normalise_plan(SPEC_EXAMPLE)
    costs = step_costs(plan)
    image_tool, video_tool = CATALOG["generate_image"], CATALOG["generate_video"]
    expected_image = image_tool.cost(image_tool.args(prompt="a", width=1024, height=576))
    expected_video = video_tool.cost(
        video_tool.args(prompt="b", duration=5, referenceImageIndices=[0])
    )
    assert costs == {"keyframe": expected_image, "clip": expected_video}
    assert plan_cost(plan) == round(expected_image + expected_video, 2)
    assert plan_cost(plan) > 0


def test_cost_counts_fan_out_bindings() -> None:
    one = _plan_with(
        "animate_photo",
        [_bind("a", "sourceImageIndices", "image_index")],
        sources=("a",),
        prompt="p",
    )
    two = _plan_with(
        "animate_photo",
        [
            _bind("a", "sourceImageIndices", "image_index"),
            _bind("b", "sourceImageIndices", "image_index"),
        ],
        sources=("a", "b"),
        prompt="p",
    )
    assert step_costs(two)["target"] == 2 * step_costs(one)["target"]


def test_stand_in_url_is_http() -> None:
    assert STAND_IN_URL.startswith("https://")


def test_a_step_run_policy_is_checked_and_kept() -> None:
    plan = normalise_plan(
        {
            "steps": [
                {
                    "id": "ask",
                    "toolName": "ask_clarifying_question",
                    "arguments": {"question": "Which mood?"},
                    "answerTimeoutSeconds": 30,
                },
                {
                    "id": "art",
                    "toolName": "generate_image",
                    "arguments": {"prompt": "x"},
                    "after": ["ask"],
                    "onError": "skip",
                    "maxAttempts": 2,
                },
            ]
        }
    )
    ask, art = plan.steps
    assert ask.asks_user and ask.answerTimeoutSeconds == 30
    assert (art.onError, art.maxAttempts, art.after, art.needs()) == ("skip", 2, ["ask"], ["ask"])


@pytest.mark.parametrize(
    ("policy", "param"),
    [
        ({"onError": "explode"}, "input.steps[0].onError"),
        ({"maxAttempts": 9}, "input.steps[0].maxAttempts"),
        ({"after": ["ghost"]}, "input.steps[0].after[0]"),
        ({"answerTimeoutSeconds": 5}, "input.steps[0].answerTimeoutSeconds"),
    ],
)
def test_a_bad_step_run_policy_is_a_400_naming_the_field(policy: dict, param: str) -> None:
    step = {"toolName": "generate_image", "arguments": {"prompt": "x"}, **policy}
    with pytest.raises(ServiceError) as caught:
        normalise_plan({"steps": [step]})
    assert caught.value.status == 400 and caught.value.param == param


def _answer_plan(after: list[str] | None) -> dict:
    ask = {"id": "ask", "toolName": "ask_clarifying_question", "arguments": {"question": "Mood?"}}
    art = {
        "id": "art",
        "toolName": "generate_image",
        "arguments": {"prompt": "a ${answers.ask} sea, $answers.ask light"},
    }
    if after is not None:
        art["after"] = after
    return {"steps": [ask, art]}


def test_an_answer_fills_the_placeholders_of_a_step_that_waits_for_it() -> None:
    art = normalise_plan(_answer_plan(["ask"])).step("art")
    outputs = {"ask": StepOutput(status="completed", answer="calm")}
    assert resolve_arguments(art, outputs)["prompt"] == "a calm sea, calm light"
    with pytest.raises(BindingError) as caught:
        resolve_arguments(art, {"ask": StepOutput(status="completed")})
    assert "'ask' has no answer" in caught.value.message


def test_an_answer_of_a_step_not_waited_for_is_a_400() -> None:
    with pytest.raises(ServiceError) as caught:
        normalise_plan(_answer_plan(None))
    assert caught.value.param == "input.steps[1].arguments"
    assert "$answers.ask" in caught.value.message
