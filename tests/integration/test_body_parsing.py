"""Every route that takes a body answers a body it cannot use with a 400 in its error shape, or a
413 when the body is too large, and never a 500: empty, not JSON, JSON that is not an object, an
object sent under another Content-Type, bytes that are not UTF-8, uploads that are not media.

The routes come from the app's OpenAPI document, so a new route with a body is walked too, and
the first test checks that the document lists every body a route reads."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import pytest_asyncio

from sogni_intelligence.api.app import create_app
from sogni_intelligence.config import Settings
from tests.conftest import InProcessApp, in_process_app
from tests.integration.runtime.conftest import runtime_settings

MAX_BODY = 64 * 1024
IN_MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")
JSON = "application/json"
#: The OpenAI-compatible routes answer `{"error": {...}}`, the Anthropic ones
#: `{"type": "error", "error": {"type", "message"}}`; every other route the Sogni shape.
OPENAI_SHAPE = frozenset(
    {"/v1/chat/completions", "/v1/responses", "/v1/responses/{response_id}/cancel"}
)
ANTHROPIC_SHAPE = frozenset({"/v1/messages", "/v1/messages/count_tokens"})
METHODS_WITH_BODIES = ("post", "put", "patch")


def _settings(data_dir: Path) -> Settings:
    """No LLM is loaded: every request here is refused before one would run."""
    return runtime_settings(
        data_dir, f"sqlite+aiosqlite:///{data_dir / 'sogni.sqlite'}", max_body_bytes=MAX_BODY
    )


# Building the app reads no files, so the document is there to parametrize the tests with.
DOCUMENT: dict[str, Any] = create_app(_settings(Path("unused"))).openapi()


def _operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            if method in METHODS_WITH_BODIES:
                yield method.upper(), path, operation


def _takes_json(operation: dict[str, Any]) -> bool:
    """JSON unless the document says otherwise (a route whose body is missing from the document
    is walked as a JSON route, and fails the first test)."""
    return JSON in operation.get("requestBody", {}).get("content", {JSON: None})


def _optional(operation: dict[str, Any]) -> bool:
    return not operation.get("requestBody", {}).get("required", False)


JSON_ROUTES = [
    pytest.param(m, p, _optional(op), id=f"{m} {p}")
    for m, p, op in _operations()
    if _takes_json(op)
]
UPLOAD_ROUTES = [
    pytest.param(m, p, id=f"{m} {p}") for m, p, op in _operations() if not _takes_json(op)
]
ALL_ROUTES = [pytest.param(m, p, id=f"{m} {p}") for m, p, _ in _operations()]

#: (name, body, Content-Type or None for no header)
UNUSABLE = [
    ("empty", b"", JSON),
    ("empty-untyped", b"", None),
    ("not-json", b"not json", JSON),
    ("truncated-json", b'{"messages": [', JSON),
    ("list", b"[]", JSON),
    ("number", b"42", JSON),
    ("string", b'"text"', JSON),
    ("null", b"null", JSON),
    ("object-as-text", b"{}", "text/plain"),
    ("object-as-xml", b"{}", "application/xml"),
    ("object-untyped", b"{}", None),
    ("object-as-form", b"{}", "application/x-www-form-urlencoded"),
    ("not-utf8", b'{"a": "\xff\xfe"}', JSON),
]
#: What a route with an optional body takes as "no body": its handler runs (here on an id that
#: does not exist, so 404).
NO_BODY = frozenset({"empty", "empty-untyped", "null"})
NOT_MEDIA = [
    *UNUSABLE,
    ("form-without-boundary", b"x", "multipart/form-data"),
    (
        "form-without-file",
        b'--b\r\nContent-Disposition: form-data; name="other"\r\n\r\nx\r\n--b--\r\n',
        "multipart/form-data; boundary=b",
    ),
    ("truncated-png", b"\x89PNG\r\n\x1a\n" + b"\0" * 32, "image/png"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[InProcessApp]:
    # An admin key: the admin routes' bodies are walked too.
    settings = _settings(tmp_path_factory.mktemp("bodies"))
    async with in_process_app(settings, role="admin") as running:
        yield running


def _path_and_query(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.path}?{parsed.query.decode()}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def upload_path(app: InProcessApp) -> dict[str, str]:
    """Signed upload URLs' paths and queries, by route: without a signature a PUT stops at a
    403. The saved upload is declared larger than any body sent here."""
    auth = {"Authorization": f"Bearer {app.key}"}
    slot = await app.http.get(
        "/v1/image/uploadUrl", params={"jobId": "job-1", "type": "startingImage"}, headers=auth
    )
    assert slot.status_code == 200, slot.text
    saved = await app.http.post(
        "/v1/assets/prepare",
        json={"bytes": 4 * MAX_BODY, "contentType": "image/png"},
        headers=auth,
    )
    assert saved.status_code == 200, saved.text
    return {
        "/v1/uploads/": _path_and_query(slot.json()["data"]["uploadUrl"]),
        "/v1/assets/{asset_id}/content": _path_and_query(saved.json()["data"]["uploadUrl"]),
    }


def _target(path: str, upload_path: dict[str, str]) -> str:
    """The URL to send to: ids that do not exist, except the signed upload URLs."""
    for route, signed in upload_path.items():
        if path.startswith(route):
            return signed
    return re.sub(r"\{[^}]+\}", "missing", path)


async def _send(
    app: InProcessApp, method: str, url: str, body: Any, content_type: str | None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {app.key}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return await app.http.request(method, url, content=body, headers=headers)


def _error_schema(path: str) -> dict[str, Any]:
    """The error body the document promises for the route's refusals (the first operation with
    a 400 on the path), resolved against the document's own components."""
    operations = DOCUMENT["paths"][path].values()
    refusal = next(op["responses"]["400"] for op in operations if "400" in op["responses"])
    schema = refusal["content"][JSON]["schema"]
    return {**schema, "components": DOCUMENT["components"]}


def _assert_error(response: httpx.Response, status: int, path: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    jsonschema.validate(body, _error_schema(path))
    error = body["error"]
    if path in ANTHROPIC_SHAPE:
        assert set(body) == {"type", "error"} and body["type"] == "error"
        assert set(error) == {"type", "message"} and error["message"]
        return
    assert set(error) == {"message", "type", "code", "param"} and error["message"]
    if path in OPENAI_SHAPE:
        assert set(body) == {"error"}
    else:
        assert body["status"] == "error" and body["errorCode"] == status
        assert body["message"] == error["message"]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def test_the_document_promises_400_in_the_error_shape_never_422() -> None:
    """What the server answers a request it cannot use (FastAPI's default says 422)."""
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "422" not in responses, f"{method} {path}"
            if "requestBody" in operation or operation.get("parameters"):
                assert "400" in responses, f"{method} {path}"
    assert "HTTPValidationError" not in DOCUMENT["components"]["schemas"]


def test_every_body_a_route_reads_is_in_the_document() -> None:
    """A body read by hand would be missing here, and the walk below would miss the route."""
    without = [f"{m} {p}" for m, p, op in _operations() if "requestBody" not in op]
    assert without == []
    assert len(JSON_ROUTES) >= 10 and len(UPLOAD_ROUTES) == 4
    for _, path, operation in _operations():
        media = operation["requestBody"]["content"]
        if JSON in media:
            schema = _resolve(media[JSON]["schema"])
            members = [_resolve(s) for s in schema.get("anyOf", [schema])]
            objects = [s for s in members if s.get("type") == "object" and s.get("properties")]
            assert objects, f"{path}: the body's schema is no object with properties: {schema}"


@IN_MODULE_LOOP
@pytest.mark.parametrize(("method", "path", "optional"), JSON_ROUTES)
@pytest.mark.parametrize(("case", "body", "content_type"), UNUSABLE, ids=[c[0] for c in UNUSABLE])
async def test_unusable_json_body_is_400(
    app: InProcessApp,
    upload_path: dict[str, str],
    method: str,
    path: str,
    optional: bool,
    case: str,
    body: bytes,
    content_type: str | None,
) -> None:
    response = await _send(app, method, _target(path, upload_path), body, content_type)
    _assert_error(response, 404 if optional and case in NO_BODY else 400, path)


@IN_MODULE_LOOP
@pytest.mark.parametrize(("method", "path"), UPLOAD_ROUTES)
@pytest.mark.parametrize(("case", "body", "content_type"), NOT_MEDIA, ids=[c[0] for c in NOT_MEDIA])
async def test_upload_that_is_not_media_is_400(
    app: InProcessApp,
    upload_path: dict[str, str],
    method: str,
    path: str,
    case: str,
    body: bytes,
    content_type: str | None,
) -> None:
    response = await _send(app, method, _target(path, upload_path), body, content_type)
    _assert_error(response, 400, path)


async def _chunks() -> AsyncIterator[bytes]:
    """A body past the limit with no Content-Length: it is counted as it streams in."""
    for _ in range(MAX_BODY // 4096 + 2):
        yield b" " * 4096


@IN_MODULE_LOOP
@pytest.mark.parametrize(("method", "path"), ALL_ROUTES)
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_oversize_body_is_413(
    app: InProcessApp,
    upload_path: dict[str, str],
    method: str,
    path: str,
    declared: bool,
) -> None:
    body = b"{}" + b" " * MAX_BODY if declared else _chunks()
    response = await _send(app, method, _target(path, upload_path), body, JSON)
    _assert_error(response, 413, path)
    error = response.json()["error"]
    assert error["type" if path in ANTHROPIC_SHAPE else "code"] == "request_too_large"
