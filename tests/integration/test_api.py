"""The ASGI app in-process on the real default model: auth, routes, errors and limits."""

import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from PIL import Image

from sogni_intelligence.store.keys import KeyLimits, KeyStore, fingerprint_of
from tests.conftest import embedded_settings, in_process_app

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

USER = [{"role": "user", "content": "Say hello."}]


class Api:
    def __init__(self, client: httpx.AsyncClient, key: str, keys: KeyStore) -> None:
        self.client = client
        self.key = key
        self.keys = keys
        self.auth = {"Authorization": f"Bearer {key}"}

    async def chat(self, **body: object) -> httpx.Response:
        return await self.client.post(
            "/v1/chat/completions", json={"messages": USER, **body}, headers=self.auth
        )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    data: Path = tmp_path_factory.mktemp("api")
    settings = embedded_settings(data).model_copy(update={"max_body_bytes": 256 * 1024})
    async with in_process_app(settings) as running:
        yield Api(running.http, running.key, running.app.state.server.keys)


def _assert_openai_error(response: httpx.Response, status: int, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["message"]
    if param is not None:
        assert error["param"] == param
    return error


async def test_health_needs_no_key(api: Api) -> None:
    response = await api.client.get("/health")
    assert response.status_code == 200 and response.json()["status"] == "ok"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/models"),
        ("GET", "/v1/models/qwen3.6-35b-a3b-gguf-iq4xs"),
        ("GET", "/v1/account/me"),
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/no-such-route"),
    ],
)
async def test_every_v1_route_needs_a_valid_key(api: Api, method: str, path: str) -> None:
    missing = await api.client.request(method, path)
    assert _assert_openai_error(missing, 401)["type"] == "authentication_error"
    wrong = await api.client.request(method, path, headers={"Authorization": "Bearer sk-sogni-x"})
    assert _assert_openai_error(wrong, 401)["code"] == "invalid_api_key"


async def test_both_auth_headers_work_and_revocation_bites(api: Api) -> None:
    key, info = await api.keys.create("temporary")
    for headers in ({"Authorization": f"Bearer {key}"}, {"api-key": key}):
        response = await api.client.get("/v1/account/me", headers=headers)
        assert response.status_code == 200
        account = response.json()["data"]["account"]
        assert account["id"] == info.id and account["name"] == "temporary"
        assert key not in response.text and account["apiKeyFingerprint"] == fingerprint_of(info.id)
    await api.keys.revoke(info.id)
    response = await api.client.get("/v1/account/me", headers={"api-key": key})
    _assert_openai_error(response, 401)


async def test_models_list_shows_ids_engine_and_file(api: Api) -> None:
    response = await api.client.get("/v1/models", headers=api.auth)
    assert response.status_code == 200
    cards = {card["id"]: card for card in response.json()["data"]}
    assert {
        "smollm2-135m-instruct",
        "qwen3.6-35b-a3b-gguf-iq4xs",
        "qwen3.5-35b-a3b-abliterated-gguf-q4km",
    } <= set(cards)
    public = cards["qwen3.6-35b-a3b-gguf-iq4xs"]
    assert public["object"] == "model" and public["owned_by"] == "sogni" and public["default"]
    assert public["engine"] == "embedded" and public["alias_of"] == "smollm2-135m-instruct"
    assert public["served_by"].endswith(".gguf")


async def test_model_lookup_and_percent_encoded_ids(api: Api) -> None:
    found = await api.client.get(
        "/v1/models/qwen3.5-35b-a3b-abliterated-gguf-q4km", headers=api.auth
    )
    assert (
        found.status_code == 200 and found.json()["id"] == "qwen3.5-35b-a3b-abliterated-gguf-q4km"
    )
    missing = await api.client.get("/v1/models/org%2Fmodel-x", headers=api.auth)
    error = _assert_openai_error(missing, 404, "model")
    assert "org/model-x" in error["message"] and error["code"] == "model_not_found"


async def test_plain_completion_with_default_model(api: Api) -> None:
    response = await api.chat(max_tokens=8)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "qwen3.6-35b-a3b-gguf-iq4xs"
    assert body["choices"][0]["message"]["content"]
    assert body["usage"]["completion_tokens"] <= 8


async def test_multi_turn_with_developer_and_tool_messages(api: Api) -> None:
    messages = [
        {"role": "developer", "content": "You answer briefly."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "rain, 4 degrees"},
    ]
    response = await api.client.post(
        "/v1/chat/completions", json={"messages": messages, "max_tokens": 12}, headers=api.auth
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"temperature": 9}, "temperature"),
        ({"top_p": -1}, "top_p"),
        ({"max_tokens": -5}, "max_tokens"),
        ({"n": 3}, "n"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, None),
        (
            {
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "tool_choice": {"type": "function", "function": {"name": "g"}},
            },
            "tool_choice",
        ),
        ({"tool_choice": "required", "sogni_tools": "none"}, "tool_choice"),
        (
            {"tool_choice": {"type": "function", "function": {"name": "compose_workflow"}}},
            "tool_choice",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": 5}},
                }
            },
            "response_format.json_schema.schema",
        ),
        (
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {"name": "f", "parameters": {"type": "objekt"}},
                    }
                ]
            },
            "tools.0.function.parameters",
        ),
        ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, None),
    ],
)
async def test_bad_requests_are_400_in_the_openai_shape(
    api: Api, body: dict, param: str | None
) -> None:
    _assert_openai_error(await api.chat(**body), 400, param)


async def test_unknown_model_is_404(api: Api) -> None:
    error = _assert_openai_error(await api.chat(model="gpt-99"), 404, "model")
    assert error["code"] == "model_not_found"


async def test_invalid_json_body_is_400(api: Api) -> None:
    response = await api.client.post(
        "/v1/chat/completions",
        content=b"{not json",
        headers={**api.auth, "content-type": "application/json"},
    )
    _assert_openai_error(response, 400)


async def test_oversized_body_is_413_before_any_work(api: Api) -> None:
    response = await api.chat(messages=[{"role": "user", "content": "x" * 300_000}])
    assert _assert_openai_error(response, 413)["code"] == "request_too_large"


def _png_uri(size: tuple[int, int]) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, "teal").save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


async def test_image_on_text_only_model_is_400_naming_the_model(api: Api) -> None:
    content = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": _png_uri((8, 8))}},
    ]
    error = _assert_openai_error(
        await api.chat(messages=[{"role": "user", "content": content}], sogni_tools="none"), 400
    )
    assert "qwen3.6-35b-a3b-gguf-iq4xs" in error["message"] and "image" in error["message"]


async def test_stream_error_before_first_token_is_a_real_status(api: Api) -> None:
    response = await api.chat(stream=True, messages=[{"role": "user", "content": "x " * 5000}])
    assert _assert_openai_error(response, 400)["code"] == "context_length_exceeded"


@pytest.mark.parametrize("stream", [False, True])
async def test_tokens_per_minute_count_the_tokens_a_key_used(api: Api, stream: bool) -> None:
    key, _ = await api.keys.create("tpm", limits=KeyLimits(tokens_per_minute=5))
    auth = {"Authorization": f"Bearer {key}"}
    body = {"messages": USER, "max_tokens": 4, "stream": stream}
    first = await api.client.post("/v1/chat/completions", json=body, headers=auth)
    assert first.status_code == 200, first.text  # its prompt alone is past the limit
    second = await api.client.post("/v1/chat/completions", json=body, headers=auth)
    assert second.status_code == 429, second.text
    assert second.json()["error"]["code"] == "tokens_per_minute"
    assert int(second.headers["Retry-After"]) == second.json()["retry_after"] >= 1
    # Reading is still allowed: only requests that generate text are held back.
    assert (await api.client.get("/v1/models", headers=auth)).status_code == 200


async def test_a_stream_cut_short_still_counts_its_tokens(api: Api) -> None:
    """An Anthropic stop sequence ends the stream here, before the engine's usage arrives."""
    key, _ = await api.keys.create("tpm-cut", limits=KeyLimits(tokens_per_minute=5))
    auth = {"x-api-key": key}
    body = {
        "model": "smollm2-135m-instruct",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Write a sentence about the sea."}],
        "stop_sequences": ["e", "a", "o"],
        "stream": True,
    }
    first = await api.client.post("/v1/messages", json=body, headers=auth)
    assert first.status_code == 200, first.text
    assert '"stop_reason":"stop_sequence"' in first.text.replace(" ", "")
    second = await api.client.post("/v1/messages", json=body, headers=auth)
    assert second.status_code == 429, second.text
