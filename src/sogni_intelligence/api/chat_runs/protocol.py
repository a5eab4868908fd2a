"""Request bodies of `/v1/chat/runs` (snake_case or camelCase)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sogni_intelligence.agent.profiles import TaskProfile
from sogni_intelligence.agent.surfaces import SogniTools
from sogni_intelligence.api.chat_completions.protocol import Message, NamedToolChoice, Tool
from sogni_intelligence.api.wire import WireModel


class Sampling(WireModel):
    """The chat-completions sampling fields, with the same ranges."""

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0)
    min_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    repetition_penalty: float | None = Field(None, gt=0, le=10)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    stop: str | list[str] | None = None
    seed: int | None = None


class StartRunBody(WireModel):
    messages: list[Message] = Field(min_length=1)
    tools: list[Tool] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    model: str | None = None
    sampling: Sampling | None = None
    media_references: list[dict[str, Any]] | None = None
    media_context: dict[str, list[str]] | None = None
    max_estimated_capacity_units: float | None = Field(None, ge=0)
    confirm_cost: bool = False
    session_id: str | None = Field(None, max_length=200)
    client_message_id: str | None = Field(None, max_length=200)
    token_type: Literal["spark", "sogni", "auto"] | None = None
    billing_mode: str | None = Field(None, max_length=32)
    app_source: str | None = Field(None, max_length=128)
    runtime_config: dict[str, Any] | None = None
    #: Our extension: which hosted tools the run's agent has (the agent set by default).
    sogni_tools: SogniTools = "creative-agent"
    task_profile: TaskProfile | None = None


class CancelRunBody(WireModel):
    reason: str | None = Field(None, max_length=1000)


class ConfirmRunCostBody(WireModel):
    tool_call_id: str = Field(min_length=1, max_length=200)
    decision: Literal["confirm", "cancel"]
    accepted_cost_preview: dict[str, Any] | None = None
    overrides: dict[str, Any] | None = None
    reason: str | None = Field(None, max_length=1000)
