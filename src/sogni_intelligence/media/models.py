"""Public media model ids and the installed backend each resolves to.

Clients written for the hosted service name models such as `z-turbo`, `ltx25` or
`minimax_music3`; here each is an alias of a backend that really runs on this machine, and the
artifact metadata names that backend. Ids that need a model this server cannot run resolve to
nothing and fail with MODEL_UNAVAILABLE; unknown ids fail with PARAMETER_INVALID.
"""

from __future__ import annotations

from sogni_intelligence.errors import ToolError

PROCEDURAL_IMAGE = "procedural-image"
KEYFRAME_VIDEO = "keyframe-video"
MIDI_MUSIC = "midi-fluidsynth"
ESPEAK = "espeak-ng"

IMAGE_MODELS = {
    name: PROCEDURAL_IMAGE
    for name in (
        "z-turbo",
        "z-image",
        "gpt-image-2",
        "gpt-image-2.5-sunburst",
        "gpt-image-2.5-flare",
        "krea-2-turbo",
        "moss-image",
        "moss-image-8step",
        "flux-3-klein",
        "dark-beast-krea2",
        "dark-beast-z-turbo",
        "qwen-2512",
        "qwen-2512-lightning",
        "qwen",
        "qwen-lightning",
        "chroma-v46-flash",
        "chroma1-hd",
        "chroma-detail",
        "pony-v7",
        "albedo-xl",
        "animagine-xl",
        "one-obsession-v22",
        "anima-pencil-xl",
        "art-universe-xl",
        "hyphoria-real",
        "analog-madness-xl",
        "cyberrealistic-xl",
        "real-dream-xl",
        "faetastic-xl",
        "zavychroma-xl",
        "pony-faetality",
        "dreamshaper-xl",
        "krea-identity-edit",
        "dark-beast-krea2-identity-edit",
        "sdxl",
        "procedural",
    )
}
VIDEO_MODELS = {
    name: KEYFRAME_VIDEO
    for name in (
        "ltx25",
        "ltx23",
        "wan22",
        "seedance2",
        "seedance2-mini",
        "seedance2-mini-uncensored",
        "seedance2-5",
        "seedance2-5-uncensored",
        "minimax-h3-t2v",
        "minimax-h3-i2v",
        "minimax-h3-r2v",
        "happyhorse-1.1-t2v",
        "happyhorse-1.1-i2v",
        "happyhorse-1.1-r2v",
        "wan3.0-video",
        "wan3.0-spicy-video",
        "keyframe",
    )
}
MUSIC_MODELS = {
    name: MIDI_MUSIC
    for name in (
        "minimax_music3",
        "ace_step_1.5_xl_turbo",
        "ace_step_1.5_xl_sft",
        "ace_step_1.5_turbo",
        "ace_step_1.5_sft",
        "midi",
    )
}
# Voice cloning and voice design need neural TTS models this server does not ship.
SPEECH_MODELS: dict[str, str | None] = {"voice": ESPEAK, "clone": None, "design": None}

DEFAULT_IMAGE_MODEL = "z-turbo"
DEFAULT_VIDEO_MODEL = "ltx25"
DEFAULT_MUSIC_MODEL = "minimax_music3"


def resolve_model(table: dict[str, str | None] | dict[str, str], name: str, kind: str) -> str:
    """The backend behind `name`, or a ToolError the model can act on."""
    if name not in table:
        known = ", ".join(sorted(table))
        raise ToolError("PARAMETER_INVALID", f"unknown {kind} model '{name}'; available: {known}")
    backend = table[name]
    if backend is None:
        runnable = ", ".join(sorted(k for k, v in table.items() if v))
        raise ToolError(
            "MODEL_UNAVAILABLE",
            f"the {kind} model '{name}' is not installed on this server; use one of: {runnable}",
        )
    return backend
