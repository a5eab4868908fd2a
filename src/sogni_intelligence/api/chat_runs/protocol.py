"""Request bodies of `/v1/chat/runs` (snake_case or camelCase)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from sogni_intelligence.agent.profiles import TaskProfile
from sogni_intelligence.agent.surfaces import SogniTools
from sogni_intelligence.api.billing import AppSource, BillingMode, TokenType
from sogni_intelligence.api.chat_completions.protocol import Message, NamedToolChoice, Tool
from sogni_intelligence.api.wire import MAX_DB_INT, WireModel


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


class ForkFrom(WireModel):
    """The run to continue, and the event after which its history is cut."""

    run_id: str = Field(min_length=1, max_length=64)
    after_sequence: int = Field(ge=0, le=MAX_DB_INT)


class StartRunBody(WireModel):
    #: The conversation; with `fork_from`, the messages added after the forked history.
    messages: list[Message] = Field(default_factory=list)
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
    token_type: TokenType | None = None
    billing_mode: BillingMode | None = None
    app_source: AppSource | None = None
    runtime_config: dict[str, Any] | None = None
    #: Our extension: which hosted tools the run's agent has (the agent set by default).
    sogni_tools: SogniTools = "creative-agent"
    task_profile: TaskProfile | None = None
    #: Our extension: start from another run's history up to one of its events.
    fork_from: ForkFrom | None = None
    #: With `fork_from`: run the original's later rounds again (same seed and sampling) and
    #: report each round that comes out differently as a `replay_diverged` event.
    replay: bool = False

    @model_validator(mode="after")
    def _needs_a_conversation(self) -> StartRunBody:
        if not self.messages and self.fork_from is None:
            raise ValueError("messages must have at least one message (or give fork_from)")
        if self.replay and self.fork_from is None:
            raise ValueError("replay needs fork_from: the run to replay")
        return self


class CancelRunBody(WireModel):
    reason: str | None = Field(None, max_length=1000)


class ConfirmRunCostBody(WireModel):
    tool_call_id: str = Field(min_length=1, max_length=200)
    decision: Literal["confirm", "cancel"]
    accepted_cost_preview: dict[str, Any] | None = None
    overrides: dict[str, Any] | None = None
    reason: str | None = Field(None, max_length=1000)
