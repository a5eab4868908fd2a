"""Arguments of the GPU video tools: sound_to_video, video_to_video, orbit_video and
dance_montage, as the hosted manifest defines them (names, enums, ranges), in our own words."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, Field, model_validator

from sogni_intelligence.tools.media_context import AudioIndex, ImageIndex, VideoIndex
from sogni_intelligence.tools.unavailable_args import (
    MediaUrl,
    Ranges,
    Source,
    UnavailableArgs,
    check_duration,
)
from sogni_intelligence.tools.video_tools import AspectRatio, WanRatio

# ---------------------------------------------------------------------------------------------
# The two diffusion video tools share the hosted video-generation options.


class _VideoDiffusionArgs(UnavailableArgs):
    prompt: str = Field(min_length=1, max_length=8000, description="The video to make.")
    expandPrompt: bool | None = Field(
        None, description="Seedance/Wan 3: let the service rewrite the prompt (default true)."
    )
    negativePrompt: str | None = Field(
        None, max_length=4000, description="What to keep out (LTX and WAN models only)."
    )
    generateAudio: bool | None = Field(
        None, description="Keep an audio track in the result (default true)."
    )
    targetResolution: int | None = Field(
        None, ge=144, le=2160, description="Short side in px, e.g. 720 or 1080."
    )
    duration: float | None = Field(None, ge=2, le=30, description="Seconds; range per model.")
    numberOfVariations: int = Field(1, ge=1, le=16, description="How many videos.")
    outputFormat: Literal["mp4", "mov"] = Field("mp4", description="Container; mov: Seedance 2.5.")
    returnLastFrame: bool = Field(False, description="Seedance 2.5: also return the last frame.")


# ---------------------------------------------------------------------------------------------
# sound_to_video

SoundVideoModel = Literal[
    "wan-s2v",
    "seedance2",
    "seedance2-mini",
    "seedance2-mini-uncensored",
    "seedance2-5",
    "seedance2-5-uncensored",
    "ltx25-ia2v",
    "ltx25-a2v",
    "ltx23-ia2v",
    "ltx23-a2v",
    "wan3.0-video",
    "wan3.0-spicy-video",
    "minimax-h3-fasth3-ia2v-turbo",
    "minimax-h3-fasth3-ia2v-turbo-2stage",
    "minimax-h3-fasth3-flfa2v-turbo",
    "minimax-h3-fasth3-flfa2v-turbo-2stage",
    "minimax-h3-fasth3-a2v-turbo",
    "minimax-h3-fasth3-a2v-turbo-2stage",
]
H3_AUDIO = "minimax-h3-fasth3-"
# Seconds per model family (longest prefix first); MiniMax H3 snaps any length to its grid.
SOUND_DURATIONS: Ranges = {
    "seedance2-5": (4, 30),
    "seedance2": (4, 15),
    "wan3.0": (2, 30),
    "ltx": (2, 20),
    "wan-s2v": (2, 20),
}


class SoundToVideoArgs(_VideoDiffusionArgs):
    audioSourceIndex: AudioIndex | None = Field(
        None, description="0-based uploaded audio; omit for the latest generated song."
    )
    sourceImageIndex: ImageIndex | None = Field(
        None, description="0-based uploaded image for the first frame (needed for lip-sync)."
    )
    endImageIndex: ImageIndex | None = Field(
        None, description="Last frame (index convention); MiniMax H3 flfa2v models only."
    )
    audioStart: float = Field(0, ge=0, description="Seconds into the audio to start from.")
    ratio: WanRatio | None = Field(None, description="Wan 3 output ratio.")
    watermark: bool | None = Field(None, description="Wan 3 (Alibaba): visible watermark.")
    referenceFileUrl: MediaUrl | None = Field(
        None, description="Wan 3 (Alibaba): a document giving extra context."
    )
    referenceLinkUrl: MediaUrl | None = Field(
        None, description="Wan 3 (Alibaba): a web page giving extra context."
    )
    videoModel: SoundVideoModel | None = Field(
        None, description="Omit: LTX 2.5 image+audio with an image, audio-only without."
    )
    aspectRatio: AspectRatio = Field(None, description="e.g. 16:9, or exact pixels 1920x1080.")
    loras: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None, min_length=1, max_length=8, description="MiniMax H3 LoRA ids, applied in order."
    )
    loraStrengths: list[Annotated[float, Field(ge=0)]] | None = Field(
        None, min_length=1, max_length=8, description="One strength per LoRA (default 1)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> SoundToVideoArgs:
        if self.referenceFileUrl and self.referenceLinkUrl:
            raise ValueError("give referenceFileUrl or referenceLinkUrl, not both")
        if self.loras and self.loraStrengths and len(self.loras) != len(self.loraStrengths):
            raise ValueError("loraStrengths needs one entry per LoRA in loras")
        model = self.videoModel or ""
        if model.startswith(H3_AUDIO) and self.generateAudio is False:
            raise ValueError(f"{model} always keeps the audio: generateAudio=false is refused")
        if "-a2v-" in model and self.sourceImageIndex is not None:
            raise ValueError(f"{model} takes no image: omit sourceImageIndex")
        if self.endImageIndex is not None and "-flfa2v-" not in model:
            raise ValueError("endImageIndex needs a minimax-h3-fasth3-flfa2v videoModel")
        check_duration(self.videoModel, self.duration, SOUND_DURATIONS)
        return self

    def missing(self) -> list[str]:
        model = self.videoModel or ""
        needs = []
        if ("-ia2v-" in model or "-flfa2v-" in model) and self.sourceImageIndex is None:
            needs.append(f"{model} needs sourceImageIndex (the first frame)")
        if "-flfa2v-" in model and self.endImageIndex is None:
            needs.append(f"{model} needs endImageIndex (the last frame)")
        return needs

    def sources(self) -> list[Source]:
        found = [Source("audio", self.audioSourceIndex, "audioSourceIndex", upload_position=True)]
        if self.sourceImageIndex is not None:
            found.append(Source("image", self.sourceImageIndex, "sourceImageIndex", True))
        if self.endImageIndex is not None:
            found.append(Source("image", self.endImageIndex, "endImageIndex"))
        return found

    def requested_model(self) -> str | None:
        return self.videoModel


# ---------------------------------------------------------------------------------------------
# video_to_video

ControlMode = Literal[
    "animate-move",
    "animate-replace",
    "canny",
    "pose",
    "depth",
    "detailer",
    "outpaint",
    "inpaint",
    "seedance-v2v",
]
V2VModel = Literal[
    "ltx25-v2v",
    "ltx23-v2v",
    "wan22-animate",
    "seedance2",
    "seedance2-mini",
    "seedance2-mini-uncensored",
    "seedance2-5",
    "seedance2-5-uncensored",
]
# Which model family runs each control mode.
MODE_FAMILY = {
    "animate-move": "wan22",
    "animate-replace": "wan22",
    "seedance-v2v": "seedance",
    **dict.fromkeys(("canny", "pose", "depth", "detailer", "outpaint", "inpaint"), "ltx"),
}
V2V_DURATIONS: Ranges = {
    "seedance2-5": (4, 30),
    "seedance2": (4, 15),
    "ltx": (2, 20),
    "wan22": (2, 20),
}


class VideoToVideoArgs(_VideoDiffusionArgs):
    videoSourceIndex: VideoIndex | None = Field(
        None, description="0-based uploaded video (-1 = first also works); omit if only one."
    )
    controlMode: ControlMode | None = Field(
        None, description="How the source drives the result (default animate-move)."
    )
    videoModel: V2VModel | None = Field(None, description="Omit to pick by controlMode.")
    sourceImageIndex: ImageIndex | None = Field(
        None, description="Reference image for animate-move, animate-replace and pose."
    )
    outpaintPosition: Literal["center", "top", "bottom", "left", "right"] | None = Field(
        None, description="outpaint: where the original frame sits on the larger canvas."
    )
    outpaintAspectRatio: Literal["16:9", "9:16", "1:1", "4:3", "3:4", "21:9"] | None = Field(
        None, description="outpaint: the shape the canvas grows to."
    )
    maskImageIndex: ImageIndex | None = Field(
        None, description="inpaint: 0-based uploaded mask (white is regenerated)."
    )
    seed: int = Field(
        -1,
        ge=-1,
        le=2**32 - 1,
        description="detailer on a local model: same seed, same video; -1 picks a random seed.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> VideoToVideoArgs:
        if self.controlMode and self.videoModel:
            family = MODE_FAMILY[self.controlMode]
            if not self.videoModel.startswith(family):
                raise ValueError(
                    f"controlMode {self.controlMode} runs on a {family} model, "
                    f"not {self.videoModel}"
                )
        check_duration(self.videoModel, self.duration, V2V_DURATIONS)
        return self

    def sources(self) -> list[Source]:
        found = [Source("video", self.videoSourceIndex, "videoSourceIndex", upload_position=True)]
        if self.sourceImageIndex is not None:
            found.append(Source("image", self.sourceImageIndex, "sourceImageIndex"))
        if self.maskImageIndex is not None:
            found.append(Source("image", self.maskImageIndex, "maskImageIndex", True))
        return found

    def requested_model(self) -> str | None:
        return self.videoModel


# ---------------------------------------------------------------------------------------------
# orbit_video

OrbitAngle = Literal[
    "front-right quarter view",
    "right side view",
    "back-right quarter view",
    "back view",
    "back-left quarter view",
    "left side view",
    "front-left quarter view",
]
DEFAULT_ORBIT_TRANSITIONS = 4  # right, back, left and back to the front


class OrbitVideoArgs(UnavailableArgs):
    elevation: Literal["low-angle shot", "eye-level shot", "elevated shot", "high-angle shot"] = (
        Field("eye-level shot", description="Camera height for every view.")
    )
    distance: Literal["close-up", "medium shot", "wide shot"] = Field(
        "medium shot", description="Camera distance for every view."
    )
    prompt: str | None = Field(
        None, max_length=8000, description="The subject and its surroundings, not the motion."
    )
    dialogue: str | None = Field(
        None, max_length=500, description="A short line spoken in one transition."
    )
    dialogues: list[str] | None = Field(
        None, max_length=8, description="One short line per transition ('' for none)."
    )
    dialogueSegment: int = Field(0, ge=0, description="Transition (0-based) that gets dialogue.")
    angles: list[OrbitAngle] | None = Field(
        None, max_length=7, description="Views between the front and the way back; omit for 4."
    )
    sourceImageIndex: ImageIndex | None = Field(
        None, description="The front view (index convention)."
    )

    @model_validator(mode="after")
    def _segments(self) -> OrbitVideoArgs:
        if self.angles and len(set(self.angles)) != len(self.angles):
            raise ValueError("angles must not repeat a view")
        transitions = len(self.angles) + 1 if self.angles else DEFAULT_ORBIT_TRANSITIONS
        if self.dialogueSegment >= transitions:
            raise ValueError(f"dialogueSegment must be below {transitions} (the transitions)")
        if self.dialogues is not None and len(self.dialogues) > transitions:
            raise ValueError(f"dialogues has more lines than the {transitions} transitions")
        return self

    def sources(self) -> list[Source]:
        return [Source("image", self.sourceImageIndex, "sourceImageIndex")]


# ---------------------------------------------------------------------------------------------
# dance_montage

Dance = Literal[
    "rasputin",
    "big-guy",
    "keep-it-gangsta",
    "this-is-america",
    "chinese-new-year",
    "spongebob",
    "chanel",
    "crystal-light-aerobics-1988",
    "plastic-dream-sequence",
]
SINGLE_CLIP_MAX_S = 20


class DanceMontageArgs(UnavailableArgs):
    dance: Dance = Field(description="The choreography to copy.")
    duration: float | None = Field(
        None, ge=8, le=30, description="Seconds; omit for the whole dance (capped per dance)."
    )
    sourceImageIndex: ImageIndex | None = Field(
        None, description="Who dances (index convention); omit to use every generated image."
    )
    imagePrompt: str | None = Field(
        None,
        max_length=8000,
        validation_alias=AliasChoices("imagePrompt", "prompt"),
        description="Look of the dancer images made when there are none yet.",
    )
    singleClip: bool = Field(False, description="One unbroken clip (at most 20 s).")

    @model_validator(mode="after")
    def _single_clip(self) -> DanceMontageArgs:
        if self.singleClip and self.duration is not None and self.duration > SINGLE_CLIP_MAX_S:
            raise ValueError(f"singleClip works up to {SINGLE_CLIP_MAX_S} seconds")
        return self

    def sources(self) -> list[Source]:
        if self.sourceImageIndex is None:
            return []  # every generated image, or new ones made from imagePrompt
        return [Source("image", self.sourceImageIndex, "sourceImageIndex")]
