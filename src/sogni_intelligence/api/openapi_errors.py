"""The OpenAPI document says how the server refuses a request.

FastAPI lists a 422 with its own validation shape on every route that takes input, but this
server answers such requests 400 in its error shape (see `errors.install`). The document is
rewritten once, the first time it is asked for: the 422s become 400s whose body is
`ErrorResponse`, so generated clients and schema-driven tests expect what really comes back.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel

REF = "#/components/schemas/{model}"
#: FastAPI's own validation models, dropped once nothing refers to them.
_FASTAPI_SCHEMAS = ("HTTPValidationError", "ValidationError")


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: str | None
    param: str | None


class ErrorResponse(BaseModel):
    """The OpenAI error shape; the Sogni REST routes (media, workflows, templates) also carry
    `status`, `message` and `errorCode` beside `error`, which the Sogni SDK reads. A 429 says
    how many seconds to wait in `retry_after` and `retryAfter` (and the `Retry-After` header)."""

    error: ErrorDetail
    status: Literal["error"] | None = None
    message: str | None = None
    errorCode: int | None = None
    retry_after: int | None = None
    retryAfter: int | None = None


def _refused() -> dict[str, Any]:
    return {
        "description": "The request is not what the route takes (body, query or path).",
        "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorResponse")}}},
    }


def rewrite(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with a 400 in the server's error shape on every route that takes input, in
    place of FastAPI's 422 (in place)."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            takes_input = "requestBody" in operation or operation.get("parameters")
            if responses.pop("422", None) is not None or takes_input:
                responses.setdefault("400", _refused())
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorResponse.model_json_schema(ref_template=REF)
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorResponse"] = error_schema
    text = repr(document["paths"])
    for name in _FASTAPI_SCHEMAS:
        if REF.format(model=name) not in text:
            schemas.pop(name, None)
    return document


def document_errors(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = rewrite(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
