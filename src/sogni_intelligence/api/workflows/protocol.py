"""Request bodies of the workflow and template routes (snake_case or camelCase)."""

from __future__ import annotations

import inspect
from typing import Any, Literal

from pydantic import Field, GetJsonSchemaHandler, RootModel, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from sogni_intelligence.api.wire import WireModel
from sogni_intelligence.tools.template_model import WorkflowTemplate


class StartWorkflowBody(WireModel):
    input: dict[str, Any] | None = None
    workflow_id: str | None = None
    inputs: dict[str, Any] | None = None
    media_references: list[dict[str, Any]] | None = None
    max_estimated_capacity_units: float | None = Field(None, ge=0)
    confirm_cost: bool = False
    token_type: Literal["spark", "sogni", "auto"] | None = None
    billing_mode: str | None = None
    app_source: str | None = Field(None, max_length=128)
    safe_content_filter: bool | None = None

    @model_validator(mode="after")
    def _one_source(self) -> StartWorkflowBody:
        if (self.input is None) == (self.workflow_id is None):
            raise ValueError("send exactly one of input (an inline plan) or workflow_id + inputs")
        return self

    def options(self) -> dict[str, Any]:
        return {
            "tokenType": self.token_type,
            "billingMode": self.billing_mode,
            "appSource": self.app_source,
            "safeContentFilter": self.safe_content_filter,
        }


class CancelBody(WireModel):
    reason: str | None = Field(None, max_length=1000)


class ResumeBody(WireModel):
    token_type: Literal["spark", "sogni", "auto"] | None = None
    billing_mode: str | None = None
    app_source: str | None = None


class ReseedBody(ResumeBody):
    seed_overrides: dict[str, int] | None = None


class ConfirmCostBody(WireModel):
    decision: Literal["confirm", "cancel"] = "confirm"
    accepted_cost_preview: dict[str, Any] | None = None


class InputBody(WireModel):
    """The user's answer to a workflow waiting for input (`workflow_user_input_required`);
    `step_id`, when given, must be the step it waits on."""

    answer: str = Field(min_length=1, max_length=10000)
    step_id: str | None = Field(None, max_length=128)


class ForkBody(WireModel):
    new_name: str | None = Field(None, min_length=1, max_length=200)


class TemplateBody(RootModel[dict[str, Any]]):
    """A workflow template as a JSON object (`POST .../templates`).

    The template store checks the fields against `WorkflowTemplate` itself, with the error codes
    its other callers get too, so here the body only has to be an object; the document shows
    the model's schema, which is what the store enforces. Server fields (id, version, author's
    id, times) are ignored."""

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(WorkflowTemplate.__pydantic_core_schema__)


class TemplatePatchBody(RootModel[dict[str, Any]]):
    """Top-level template fields to change (`PATCH .../templates/{id}`); null unsets one. The
    merged template is checked as a whole by the store."""

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        full = handler.resolve_ref_schema(handler(WorkflowTemplate.__pydantic_core_schema__))
        return {
            "type": "object",
            "properties": {
                name: {"anyOf": [field, {"type": "null"}]}
                for name, field in full["properties"].items()
            },
            "description": inspect.cleandoc(cls.__doc__ or ""),
        }
