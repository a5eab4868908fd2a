"""Wire models of `POST /v1/responses` (the OpenAI Responses API plus Sogni extensions).

Input items are kept as dicts after a shape check here: `items.py` turns them into chat
messages, naming the item of any problem, so one message type covers every item kind.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field, model_validator

from sogni_intelligence.agent.profiles import TaskProfile
from sogni_intelligence.agent.surfaces import SogniTools
from sogni_intelligence.api.wire import WireModel


class FunctionTool(WireModel):
    type: Literal["function"]
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NamedFunction(WireModel):
    type: Literal["function"]
    name: str


class TextFormat(WireModel):
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    json_schema: dict[str, Any] | None = Field(
        None, validation_alias=AliasChoices("schema", "json_schema")
    )
    description: str | None = None
    strict: bool | None = None

    @model_validator(mode="after")
    def _schema_present(self) -> TextFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("text.format of type json_schema needs a schema")
        return self

    def echo(self) -> dict[str, Any]:
        if self.type != "json_schema":
            return {"type": self.type}
        return {
            "type": "json_schema",
            "name": self.name or "response",
            "schema": self.json_schema,
            "description": self.description,
            "strict": self.strict,
        }


class TextConfig(WireModel):
    format: TextFormat = Field(default_factory=TextFormat)


class ResponsesRequest(WireModel):
    model: str | None = None
    input: str | list[dict[str, Any]] = Field(min_length=1)
    instructions: str | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedFunction | None = None
    text: TextConfig | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    parallel_tool_calls: bool | None = None
    store: bool = True
    background: bool = False
    stream: bool = False
    previous_response_id: str | None = Field(None, max_length=64)
    metadata: dict[str, str] | None = Field(None, max_length=16)
    user: str | None = Field(None, max_length=256)
    # Sogni extensions, as chat completions take them
    sogni_tools: SogniTools = None
    task_profile: TaskProfile | None = None

    @model_validator(mode="after")
    def _background_is_stored(self) -> ResponsesRequest:
        if self.background and not self.store:
            raise ValueError("background responses must be stored: do not set store to false")
        return self


class CancelResponseBody(WireModel):
    """Optional: OpenAI clients send no body. Our extension: why, kept on the run."""

    reason: str | None = Field(None, max_length=1000)
