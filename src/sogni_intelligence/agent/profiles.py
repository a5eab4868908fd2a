"""Task profiles: the system prompt and sampling defaults a request gets when it names one
(or implies one: a `developer` message means coding)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TaskProfile = Literal["general", "coding", "reasoning"]


@dataclass(frozen=True)
class Profile:
    system: str
    temperature: float
    top_p: float


_TOOLS_NOTE = (
    "Hosted tools run on the server and answer with JSON results. Media produced in this "
    "conversation is numbered per type from 0 in the order it was made (images, videos and "
    "audio separately); uploaded media is numbered -1, -2, … in the order given. Pass these "
    "numbers in *Index arguments to work on earlier media."
)

PROFILES: dict[TaskProfile, Profile] = {
    "general": Profile(
        "You are a helpful creative assistant. Use a tool when the user asks for media or when "
        "a tool answers better than you can; otherwise answer directly and briefly.",
        0.7,
        0.9,
    ),
    "coding": Profile(
        "You are a careful programming assistant. Give correct, minimal code and say what it "
        "does; ask when the requirements are ambiguous.",
        0.2,
        0.95,
    ),
    "reasoning": Profile(
        "You are a rigorous assistant. Work through the problem step by step, check the "
        "result, then state the answer clearly.",
        0.6,
        0.95,
    ),
}


def profile_for(named: TaskProfile | None, has_developer_message: bool) -> TaskProfile | None:
    if named is not None:
        return named
    return "coding" if has_developer_message else None


def system_prompt(profile: TaskProfile, with_tools: bool) -> str:
    text = PROFILES[profile].system
    return f"{text}\n\n{_TOOLS_NOTE}" if with_tools else text
