"""A small synchronous HTTP client of our REST API: auth, error messages, SSE and downloads.

Synchronous on purpose: the CLI does one thing at a time, and plain iteration over a stream
keeps the follow loops easy to read.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel

from sogni_intelligence import __version__

USER_AGENT = f"sogni-agent/{__version__}"
#: Waiting for the first byte of a stream may take as long as the work it reports on.
STREAM_TIMEOUT = httpx.Timeout(None, connect=15.0)


class ApiError(Exception):
    """A request that failed: `status` is the HTTP status, 0 when the server was not reached.

    `code` is the server's own error code when it sent one, and `retry_after` the seconds it
    asked the client to wait (body `retry_after`/`retryAfter`, else the `Retry-After` header).
    """

    def __init__(
        self,
        status: int,
        message: str,
        code: str | int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.status})" if self.status else self.message


class StreamDropped(ApiError):
    """An event stream that broke after it had started; following it again resumes it."""


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        body = json.loads(text)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def error_message(status: int, text: str) -> str:
    """The human part of an error body in any shape the API uses.

    Sogni shape `{"status": "error", "message"}`, OpenAI shape `{"error": {"message"}}`,
    socket shape `{"error": "<type>", "error_message"}`; other bodies are shown as text."""
    body = _json_object(text)
    if body is not None:
        message = body.get("message")
        if isinstance(message, str) and message:
            return message
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        for key in ("error_message", "detail"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key]
        if isinstance(error, str) and error:
            return error
    stripped = text.strip()
    if stripped:
        return stripped[:500]
    return f"the server answered HTTP {status} with an empty body"


def error_code(body: dict[str, Any] | None) -> str | int | None:
    """The most specific code an error body names: the OpenAI `error.code` (such as
    `invalid_api_key`), else the Sogni `errorCode` or socket `error_code`."""
    if body is None:
        return None
    error = body.get("error")
    candidates = [error.get("code") if isinstance(error, dict) else None]
    candidates += [body.get("errorCode"), body.get("error_code")]
    return next((c for c in candidates if isinstance(c, str | int) and c != ""), None)


def retry_after_of(body: dict[str, Any] | None, header: str | None) -> float | None:
    """Seconds to wait before a retry: the body's value, else a delta-seconds header."""
    for key in ("retry_after", "retryAfter"):
        value = (body or {}).get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    try:
        return float(header) if header else None
    except ValueError:
        return None  # an HTTP-date: rare, and the hint then says "later"


def response_error(response: httpx.Response, text: str) -> ApiError:
    """The `ApiError` of a failed response whose body is `text`."""
    body = _json_object(text)
    return ApiError(
        response.status_code,
        error_message(response.status_code, text),
        error_code(body),
        retry_after_of(body, response.headers.get("retry-after")),
    )


class SseFrame(BaseModel):
    """One server-sent event: `data` is the parsed JSON (or the raw text), None for a
    comment-only frame."""

    id: str | None = None
    event: str = "message"
    data: Any = None


def parse_sse(lines: Iterable[str]) -> Iterator[SseFrame]:
    """Frames from the lines of an event stream (blank line ends a frame, `:` is a comment)."""
    frame_id: str | None = None
    event = "message"
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                text = "\n".join(data)
                try:
                    parsed: Any = json.loads(text)
                except ValueError:
                    parsed = text
                yield SseFrame(id=frame_id, event=event, data=parsed)
            frame_id, event, data = None, "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "id":
            frame_id = value
        elif field == "event":
            event = value or "message"
        elif field == "data":
            data.append(value)
    if data:
        yield SseFrame(id=frame_id, event=event, data="\n".join(data))


def path_id(value: str) -> str:
    """An id as one path segment (ids with `/` or spaces stay one segment)."""
    return quote(value, safe="")


class ApiClient:
    """Our REST API with one key. Every failure becomes an `ApiError`."""

    def __init__(self, base_url: str, api_key: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.has_key = bool(api_key)
        self.timeout_s = timeout
        headers = {"User-Agent": USER_AGENT}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._api = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=15.0),
        )
        # Upload and artifact URLs are signed: they are fetched without the key, so it never
        # travels to a host other than the API's.
        self._plain = httpx.Client(
            headers={"User-Agent": USER_AGENT},
            timeout=httpx.Timeout(timeout, connect=15.0),
            follow_redirects=True,
        )

    def close(self) -> None:
        self._api.close()
        self._plain.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The JSON body of a successful call (envelopes left as they are)."""
        try:
            response = self._api.request(
                method, path, json=body, params=params, headers=headers or None
            )
        except httpx.RequestError as exc:
            raise self._unreachable(exc) from exc
        if response.is_error:
            raise response_error(response, response.text)
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(
                response.status_code, f"the server sent a body that is not JSON on {path}"
            ) from exc

    def data(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """The `data` object of a `{"status": "success", "data": {...}}` answer."""
        body = self.request(method, path, **kwargs)
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise ApiError(0, f"unexpected answer from {path}: no data object")
        return body["data"]

    def stream(self, path: str, after: int | None = None) -> Iterator[SseFrame]:
        """The frames of an SSE route until the server closes it, from after the event
        sequence `after` (sent both as `?after=` and as `Last-Event-ID`).

        A connection that breaks once frames flow raises `StreamDropped`."""
        params = None if after is None else {"after": after}
        headers = {"Accept": "text/event-stream"}
        if after is not None:
            headers["Last-Event-ID"] = str(after)
        try:
            with self._api.stream(
                "GET", path, params=params, headers=headers, timeout=STREAM_TIMEOUT
            ) as response:
                if response.is_error:
                    raise response_error(response, response.read().decode("utf-8", "replace"))
                try:
                    yield from parse_sse(response.iter_lines())
                except httpx.TransportError as exc:
                    raise StreamDropped(0, f"the event stream of {path} broke: {exc}") from exc
        except httpx.RequestError as exc:
            raise self._unreachable(exc) from exc

    def get_signed(self, url: str) -> bytes:
        """The body of a signed URL, fetched without the key."""
        try:
            response = self._plain.get(url)
        except httpx.RequestError as exc:
            raise self._unreachable(exc, url) from exc
        if response.is_error:
            raise response_error(response, response.text)
        return response.content

    def put_signed(self, url: str, content: bytes, content_type: str) -> None:
        """PUT bytes to a presigned upload URL (the signature is the permission)."""
        try:
            response = self._plain.put(url, content=content, headers={"Content-Type": content_type})
        except httpx.RequestError as exc:
            raise self._unreachable(exc) from exc
        if response.is_error:
            raise response_error(response, response.text)

    def download(self, url: str, directory: Path, stem: str) -> Path:
        """Save a signed artifact URL as `directory/stem.<ext>`; the file appears complete or
        not at all."""
        directory.mkdir(parents=True, exist_ok=True)
        try:
            with self._plain.stream("GET", url, timeout=STREAM_TIMEOUT) as response:
                if response.is_error:
                    raise response_error(response, response.read().decode("utf-8", "replace"))
                target = directory / f"{stem}{_extension(url, response.headers)}"
                partial = target.with_name(f".{target.name}.part")
                try:
                    with partial.open("wb") as out:
                        for chunk in response.iter_bytes():
                            out.write(chunk)
                    partial.replace(target)
                except BaseException:
                    partial.unlink(missing_ok=True)
                    raise
        except httpx.RequestError as exc:
            raise self._unreachable(exc, url) from exc
        return target

    def _unreachable(self, exc: httpx.RequestError, where: str | None = None) -> ApiError:
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            return ApiError(
                0,
                f"no answer from {where or self.base_url} within {self.timeout_s:g} s "
                "(--timeout, SOGNI_HTTP_TIMEOUT_MS)",
            )
        return ApiError(0, f"cannot reach {where or self.base_url}: {exc}")


def _extension(url: str, headers: httpx.Headers) -> str:
    """The file extension of a download: from its Content-Type, else from the URL path."""
    mime = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    guessed = mimetypes.guess_extension(mime) if mime else None
    if guessed:
        return ".jpg" if guessed == ".jpe" else guessed
    suffix = Path(urlsplit(url).path).suffix
    return suffix if 1 < len(suffix) <= 6 else ""
