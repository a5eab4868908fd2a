"""The inline workflow plan as data: a plan of steps, each step's `dependsOn` bindings to
another step's artifacts (or to `$input_media`), the artifacts a finished step hands on, and
the transforms a binding may apply.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_STEPS = 12
#: How often a step may be tried in all (`maxAttempts`).
MAX_ATTEMPTS = 5
#: A step calling this tool is not run: the workflow pauses until the user answers it.
USER_INPUT_TOOL = "ask_clarifying_question"
#: `$answers.<step id>` (or `${answers.<step id>}`) in a string argument: that step's answer.
ANSWER = re.compile(r"\$\{answers\.([A-Za-z0-9_-]+)\}|\$answers\.([A-Za-z0-9_-]+)")
#: How long a step waits for the user's answer unless it says (`answerTimeoutSeconds`).
DEFAULT_ANSWER_WAIT_S = 24 * 3600
MAX_ANSWER_WAIT_S = 7 * 24 * 3600
INPUT_MEDIA = "$input_media"
DEFAULT_TITLE = "Durable creative workflow"
STAND_IN_URL = "https://stand-in.invalid/x"


MediaType = Literal["image", "video", "audio"]
#: What a failed step does to the rest: `stop` ends the workflow (failed, later steps
#: skipped), `continue` lets the others go on (partial failure), `skip` marks it skipped and
#: skips the steps that need it. Unset is `continue`, the inline plan's rule.
OnStepError = Literal["stop", "continue", "skip"]
Transform = Literal[
    "artifact_url",
    "artifact_data_uri",
    "image_url",
    "video_url",
    "audio_url",
    "image_index",
    "video_index",
    "audio_index",
    "subtitle_cues",
    "subtitle_srt",
    "overlay_items",
    "asset_ref",
]
URL_TRANSFORMS = frozenset(
    {"artifact_url", "artifact_data_uri", "image_url", "video_url", "audio_url"}
)
INDEX_TRANSFORMS = frozenset({"image_index", "video_index", "audio_index"})
TRANSFORM_KIND: dict[str, MediaType] = {
    "image_url": "image",
    "video_url": "video",
    "audio_url": "audio",
    "image_index": "image",
    "video_index": "video",
    "audio_index": "audio",
}

# Arguments documented as 0-based positions in the uploads, not the index convention.
UPLOAD_POSITION_ARGUMENTS: frozenset[tuple[str, str]] = frozenset(
    {
        ("sound_to_video", "audioSourceIndex"),
        ("sound_to_video", "sourceImageIndex"),
        ("video_to_video", "videoSourceIndex"),
        ("extract_metadata", "fileIndex"),
    }
)


# --- models --------------------------------------------------------------------------------------


class Binding(BaseModel):
    """One `dependsOn` entry: where a value comes from and which argument it fills."""

    model_config = ConfigDict(extra="forbid")

    sourceStepId: str = Field(min_length=1)
    targetArgument: str = Field(min_length=1)
    transform: Transform
    sourceArtifactId: str | None = None
    sourceArtifactIndex: int = Field(0, ge=0)
    mediaType: MediaType | None = None
    required: bool = True

    @property
    def from_input_media(self) -> bool:
        return self.sourceStepId == INPUT_MEDIA

    def kind(self) -> MediaType | None:
        """The media type this binding selects by: `mediaType`, else the transform's type."""
        return self.mediaType or TRANSFORM_KIND.get(self.transform)


class PlanStep(BaseModel):
    id: str
    sequence: int
    toolName: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    dependsOn: list[Binding] = Field(default_factory=list)
    onError: OnStepError | None = None
    maxAttempts: int | None = Field(None, ge=1, le=MAX_ATTEMPTS)
    #: Steps this one waits for and needs to have completed, without taking a value from them.
    after: list[str] | None = None
    answerTimeoutSeconds: int | None = Field(None, ge=1, le=MAX_ANSWER_WAIT_S)

    def dependencies(self) -> list[str]:
        """The step ids this step waits for, first mention first, without `$input_media`."""
        sources = [b.sourceStepId for b in self.dependsOn if not b.from_input_media]
        return list(dict.fromkeys([*sources, *(self.after or [])]))

    def needs(self) -> list[str]:
        """The steps that must have completed for this one to run: `after`, and the sources of
        its required bindings."""
        sources = [b.sourceStepId for b in self.dependsOn if b.required and not b.from_input_media]
        return list(dict.fromkeys([*sources, *(self.after or [])]))

    @property
    def asks_user(self) -> bool:
        return self.toolName == USER_INPUT_TOOL


class Plan(BaseModel):
    title: str = DEFAULT_TITLE
    mediaReferences: list[dict[str, Any]] = Field(default_factory=list)
    steps: list[PlanStep]

    def step(self, step_id: str) -> PlanStep:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)


class ArtifactRef(BaseModel):
    """An output of a finished step. `index` is its place in the workflow's media context (per
    media type, 0-based); `data` carries a structured or text payload (cues, SRT, overlays)."""

    id: str
    kind: str
    url: str | None = None
    index: int | None = None
    data: Any = None


class StepOutput(BaseModel):
    status: Literal["completed", "failed", "skipped"]
    artifacts: list[ArtifactRef] = Field(default_factory=list)
    #: The user's answer, of a step that asked for one.
    answer: str | None = None


def answers_named(value: Any) -> Iterable[str]:
    """The step ids of the `$answers.<id>` placeholders anywhere in `value`."""
    if isinstance(value, str):
        for match in ANSWER.finditer(value):
            yield match.group(1) or match.group(2)
    elif isinstance(value, dict):
        for item in value.values():
            yield from answers_named(item)
    elif isinstance(value, list):
        for item in value:
            yield from answers_named(item)


class InputMediaRef(BaseModel):
    """A request media reference as registered for the run; `index` is its negative upload
    index within its media type (-1 is the first)."""

    kind: MediaType
    url: str
    index: int
    id: str | None = None


class BindingError(Exception):
    """A required binding could not be satisfied at run time: the step fails."""

    def __init__(self, step_id: str, message: str) -> None:
        super().__init__(f"step '{step_id}': {message}")
        self.step_id = step_id
        self.message = message
