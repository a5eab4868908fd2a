"""Wire models of `POST /v1/messages` and `POST /v1/messages/count_tokens` (the Anthropic
Messages API) plus the `sogni_tools` extension.

Fields are snake_case as the API writes them. Unknown fields are ignored (clients add their own,
e.g. `cache_control` or `thinking`), so an Anthropic client runs unchanged; block types this
server cannot serve are a 400 that names them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sogni_intelligence.agent.surfaces import SogniTools

#: The image types the API takes in a `base64` source.
IMAGE_MEDIA_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")


class WireModel(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextBlock(WireModel):
    type: Literal["text"]
    text: str


class Base64Source(WireModel):
    type: Literal["base64"]
    media_type: Literal["image/png", "image/jpeg", "image/webp", "image/gif"]
    data: str


class URLSource(WireModel):
    type: Literal["url"]
    url: str


class ImageBlock(WireModel):
    type: Literal["image"]
    source: Annotated[Base64Source | URLSource, Field(discriminator="type")]


class ToolUseBlock(WireModel):
    type: Literal["tool_use"]
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    input: dict[str, Any]


ResultPart = Annotated[TextBlock | ImageBlock, Field(discriminator="type")]


class ToolResultBlock(WireModel):
    type: Literal["tool_result"]
    tool_use_id: str = Field(min_length=1)
    content: str | list[ResultPart] | None = None
    is_error: bool | None = None


Block = Annotated[
    TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock, Field(discriminator="type")
]


class InputMessage(WireModel):
    role: Literal["user", "assistant"]
    content: str | Annotated[list[Block], Field(min_length=1)]

    @model_validator(mode="after")
    def _blocks_fit_the_role(self) -> InputMessage:
        if isinstance(self.content, str):
            return self
        kinds = {block.type for block in self.content}
        if self.role == "user" and "tool_use" in kinds:
            raise ValueError("tool_use blocks belong in assistant messages")
        if self.role == "assistant" and kinds & {"tool_result", "image"}:
            raise ValueError("an assistant message takes only text and tool_use blocks")
        return self


class ToolDefinition(WireModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    input_schema: dict[str, Any]
    #: Only client ("custom") tools; Anthropic's own server tools have a dated type.
    type: Literal["custom"] | None = None


class AutoChoice(WireModel):
    type: Literal["auto"]
    disable_parallel_tool_use: bool | None = None


class AnyChoice(WireModel):
    type: Literal["any"]
    disable_parallel_tool_use: bool | None = None


class NamedChoice(WireModel):
    type: Literal["tool"]
    name: str
    disable_parallel_tool_use: bool | None = None


class NoChoice(WireModel):
    type: Literal["none"]


ToolChoice = Annotated[AutoChoice | AnyChoice | NamedChoice | NoChoice, Field(discriminator="type")]


class Metadata(WireModel):
    user_id: str | None = Field(default=None, max_length=256)


class MessagesInput(WireModel):
    """What both routes read: the conversation and what the model may call."""

    model: str = Field(min_length=1)
    messages: list[InputMessage] = Field(min_length=1)
    system: str | list[TextBlock] | None = None
    tools: list[ToolDefinition] | None = None
    tool_choice: ToolChoice | None = None
    #: Sogni extension: hosted tools the server runs itself (none when omitted).
    sogni_tools: SogniTools = None

    @property
    def system_text(self) -> str | None:
        if isinstance(self.system, list):
            return "\n".join(block.text for block in self.system) or None
        return self.system or None


class MessagesRequest(MessagesInput):
    max_tokens: int = Field(ge=1)
    stop_sequences: list[str] | None = Field(default=None, max_length=16)
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    metadata: Metadata | None = None
    stream: bool = False

    @field_validator("stop_sequences")
    @classmethod
    def _no_empty_stop(cls, value: list[str] | None) -> list[str] | None:
        if value and any(not s for s in value):
            raise ValueError("a stop sequence cannot be empty")
        return value


class CountTokensResponse(BaseModel):
    input_tokens: int


class AnthropicErrorDetail(BaseModel):
    type: str
    message: str


class AnthropicErrorResponse(BaseModel):
    """The Anthropic error shape; a 429 also has a `Retry-After` header."""

    type: Literal["error"]
    error: AnthropicErrorDetail
