"""The upstream engine: any OpenAI-compatible server (vLLM, SGLang, llama-server, Ollama).

Requests always stream from the upstream, so closing our iterator closes the upstream
connection and the upstream stops generating. Upstream servers enforce `tool_choice` and
`response_format` themselves, so the request passes through unchanged.

Failures the upstream is to blame for (no connection, a 5xx, a refused key) raise
`EngineUnavailable`, so that a pool can send the request to another upstream.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from sogni_intelligence.config import ModelConfig, UpstreamConfig
from sogni_intelligence.llm.metering import metered
from sogni_intelligence.llm.protocol import (
    ChatRequest,
    Chunk,
    EngineError,
    EngineInfo,
    EngineUnavailable,
)


def public_url(url: str) -> str:
    """`url` without the user, password and query, which may hold credentials."""
    parts = urlsplit(url.rstrip("/"))
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class UpstreamEngine:
    def __init__(self, config: ModelConfig, upstream: UpstreamConfig) -> None:
        self.config = config
        self.url = public_url(upstream.base_url)
        self.model = config.upstream_model_of(upstream)
        self.info = EngineInfo(
            engine="upstream",
            model=f"{self.url} ({self.model})",
            vision=config.vision,
            native_tools=True,
            url=self.url,
        )
        headers = {"Authorization": f"Bearer {upstream.api_key}"} if upstream.api_key else {}
        self._client = httpx.AsyncClient(
            base_url=upstream.base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
        )

    async def start(self) -> None:
        """Upstreams are checked by their pool: a server that is down now may be up later."""

    async def close(self) -> None:
        await self._client.aclose()

    async def probe(self) -> None:
        """The upstream is up when it lists its models within the health timeout."""
        timeout = self.config.health_timeout_s
        try:
            response = await self._client.get("/models", timeout=timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise EngineUnavailable(f"upstream {self.url} is unreachable: {exc}", True) from exc
        except httpx.TimeoutException as exc:
            raise EngineUnavailable(
                f"upstream {self.url} did not list its models within {timeout:g} s"
            ) from exc
        except httpx.HTTPError as exc:
            raise EngineUnavailable(f"upstream {self.url} failed: {exc!r}") from exc
        if response.status_code != 200:
            raise EngineUnavailable(
                f"upstream {self.url} answered GET /models with {response.status_code}"
            )

    def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        return metered(self.config.id, "upstream", self._stream(request))

    async def _stream(self, request: ChatRequest) -> AsyncGenerator[Chunk, None]:
        body = {
            **request,
            "model": self.model,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        try:
            async with self._client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    raise _upstream_error(response.status_code, await response.aread())
                saw_data = False
                async for line in response.aiter_lines():
                    saw_data = saw_data or line.startswith("data:")
                    chunk = _parse_line(line)
                    if chunk is None:
                        continue
                    if "error" in chunk:
                        raise _upstream_error(502, json.dumps(chunk).encode())
                    yield chunk
                if not saw_data:
                    # e.g. a plain JSON reply from a server that ignored `stream: true`
                    raise EngineError(
                        f"upstream {self.url} did not answer with an event stream",
                        502,
                        "upstream_error",
                    )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise EngineUnavailable(f"upstream {self.url} is unreachable: {exc}", True) from exc
        except httpx.TimeoutException as exc:
            raise EngineError(f"upstream {self.url} timed out", 504, "upstream_timeout") from exc
        except httpx.HTTPError as exc:
            raise EngineUnavailable(f"upstream {self.url} failed: {exc!r}") from exc


def _parse_line(line: str) -> dict[str, Any] | None:
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if not data or data == "[DONE]":
        return None
    try:
        chunk = json.loads(data)
    except ValueError as exc:
        raise EngineError("upstream sent a malformed stream", 502, "upstream_error") from exc
    return chunk if isinstance(chunk, dict) else None


def _upstream_error(status: int, body: bytes) -> EngineError:
    message = body.decode(errors="replace")[:1000] or f"HTTP {status}"
    try:
        payload = json.loads(body)
        error = payload.get("error", payload) if isinstance(payload, dict) else payload
        if isinstance(error, dict):
            message = str(error.get("message") or message)
        elif isinstance(error, str):
            message = error
    except ValueError:
        pass
    if 400 <= status < 500 and status not in (401, 403, 408):
        # The client's request was refused: pass the reason on with the same status.
        return EngineError(f"upstream: {message}", status, "invalid_request_error")
    return EngineUnavailable(f"upstream error ({status}): {message}")
