"""Request bodies of the workflow and template routes (snake_case or camelCase)."""

from __future__ import annotations

import inspect
from typing import Any, Literal

from pydantic import Field, GetJsonSchemaHandler, RootModel, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from sogni_intelligence.api.billing import AppSource, BillingHeaders, BillingMode, TokenType
from sogni_intelligence.api.wire import WireModel
from sogni_intelligence.tools.template_model import WorkflowTemplate


class StartWorkflowBody(WireModel):
    input: dict[str, Any] | None = None
    workflow_id: str | None = None
    inputs: dict[str, Any] | None = None
    media_references: list[dict[str, Any]] | None = None
    max_estimated_capacity_units: float | None = Field(None, ge=0)
    confirm_cost: bool = False
    token_type: TokenType | None = None
    billing_mode: BillingMode | None = None
    app_source: AppSource | None = None
    safe_content_filter: bool | None = None

    @model_validator(mode="after")
    def _one_source(self) -> StartWorkflowBody:
        if (self.input is None) == (self.workflow_id is None):
            raise ValueError("send exactly one of input (an inline plan) or workflow_id + inputs")
        return self

    def options(self, headers: BillingHeaders) -> dict[str, Any]:
        return {
            **headers.billing(self.token_type, self.billing_mode, self.app_source),
            "safeContentFilter": self.safe_content_filter,
        }


class CancelBody(WireModel):
    reason: str | None = Field(None, max_length=1000)


class ResumeBody(WireModel):
    """What a resume (or a reseed) may change of how the work is billed."""

    token_type: TokenType | None = None
    billing_mode: BillingMode | None = None
    app_source: AppSource | None = None

    def billing(self, headers: BillingHeaders) -> dict[str, str]:
        """The fields this request sets (a header when the body has none); unset ones keep
        the workflow's."""
        fields = headers.billing(self.token_type, self.billing_mode, self.app_source)
        return {name: value for name, value in fields.items() if value is not None}


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
