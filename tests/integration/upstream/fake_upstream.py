"""A fake OpenAI-compatible upstream, served over real HTTP by uvicorn in a background thread.

The fake is a bare ASGI app so that it controls every byte it sends. What it does is chosen
by the `model` field of the request (the engine sends its configured `upstream_model` there):

- `chunks-N`: a role chunk, N content chunks (`w0 `, `w1 `, ...), a finish chunk, a usage
  chunk, then `[DONE]` (N defaults to 3)
- `tools`: two tool calls whose deltas interleave by index
- `status-NNN`: an HTTP error NNN with an OpenAI error body
- `sleep`: no answer at all for a long while (until the client goes away)
- `stall`: a role chunk, then nothing more (until the client goes away)
- `malformed`: a role chunk, then a `data:` line that is not JSON
- `error-chunk`: a content chunk, then an `{"error": ...}` chunk
- `truncated`: a content chunk, then the connection drops mid-body
- `not-sse`: a 200 with a plain (non-stream) JSON completion
- `forever`: content chunks every 20 ms until the client disconnects
- `script-NAME`: the reply of `SCRIPTS[NAME]` for the number of tool results the conversation
  holds so far (one reply per agent round), as content or as native tool calls

Every chat request is recorded with its headers and body, and whether (and when) the fake
saw the client disconnect. `GET .../models` (a pool's health check) is only counted: it lists
one model, or answers 503 while `healthy` is false.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

ERROR_400_MESSAGE = "This model's maximum context length is 4096 tokens"
ERROR_CHUNK_MESSAGE = "CUDA out of memory while decoding"
LONG_WAIT_S = 10.0


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    disconnected: threading.Event = field(default_factory=threading.Event)
    disconnected_at: float | None = None

    def saw_disconnect(self) -> None:
        self.disconnected_at = time.monotonic()
        self.disconnected.set()


def sse_chunk(
    model: str, choices: list[dict[str, Any]], usage: dict[str, int] | None = None
) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": choices,
    }
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def _delta(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return sse_chunk(model, [{"index": 0, "delta": delta, "finish_reason": finish}])


def content_chunks(model: str, n: int) -> list[dict[str, Any]]:
    """Exactly the chunks the fake streams in `chunks-N` mode, in order."""
    return [
        _delta(model, {"role": "assistant", "content": ""}),
        *(_delta(model, {"content": f"w{i} "}) for i in range(n)),
        _delta(model, {}, "stop"),
        sse_chunk(
            model, [], usage={"prompt_tokens": 7, "completion_tokens": n, "total_tokens": 7 + n}
        ),
    ]


def tool_chunks(model: str) -> list[dict[str, Any]]:
    """Two tool calls whose fragments interleave; arguments arrive in pieces."""

    def call(index: int, **fields: Any) -> dict[str, Any]:
        return _delta(model, {"tool_calls": [{"index": index, **fields}]})

    return [
        _delta(model, {"role": "assistant", "content": None}),
        call(
            0, id="call_weather", type="function", function={"name": "get_weather", "arguments": ""}
        ),
        call(1, id="call_time", type="function", function={"name": "get_time", "arguments": ""}),
        call(0, function={"arguments": '{"city": '}),
        call(1, function={"arguments": '{"tz": "UTC"}'}),
        call(0, function={"arguments": '"Paris"}'}),
        _delta(model, {}, "tool_calls"),
        sse_chunk(
            model, [], usage={"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}
        ),
    ]


def _frame(payload: Any, space: bool = True) -> bytes:
    return f"data:{' ' if space else ''}{json.dumps(payload)}\n\n".encode()


DONE = b"data: [DONE]\n\n"


#: Replies of the `script-NAME` modes, one per agent round: text, or a native call.
SCRIPTS: dict[str, list[str | tuple[str, dict[str, Any]]]] = {
    # A call cut off before its JSON ends, then the same call in a fenced JSON block.
    "textcalls": [
        'Sure! <tool_call>{"name": "generate_image", "arguments": {"prompt": "a cat',
        'Again:\n```json\n{"name": "generate_image", "arguments": '
        '{"prompt": "a cat", "width": 256, "height": 256}}\n```',
        "Here is your cat.",
    ],
    # A native call naming an image the session does not have, then an answer.
    "badindex": [
        ("generate_image", {"prompt": "a cat", "sourceImageIndex": 1}),
        "There was no image to start from.",
    ],
    # A native call whose prompt the content filter tests refuse, then an answer.
    "filtered": [
        ("generate_image", {"prompt": "a purple elephant", "width": 256, "height": 256}),
        "Done.",
    ],
    # The JSON object enhance_prompt asks its text model for.
    "enhanced": ['{"prompt": "a purple elephant under soft light"}'],
}


class FakeUpstream:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.url = ""
        self.port = 0
        self.healthy = True
        self.health_checks = 0

    @property
    def last(self) -> Received:
        assert self.requests, "the fake upstream received no request"
        return self.requests[-1]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        if scope["method"] == "GET" and scope["path"].endswith("/models"):
            await self._models(send)
            return
        raw = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"_raw": raw.decode(errors="replace")}
        record = Received(
            scope["method"],
            scope["path"],
            {k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body,
        )
        self.requests.append(record)
        model = str(body.get("model", ""))
        await self._answer(model, record, receive, send)

    async def _models(self, send: Any) -> None:
        self.health_checks += 1
        status = 200 if self.healthy else 503
        body = {"object": "list", "data": [{"id": "fake", "object": "model"}]}
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    async def _answer(self, model: str, record: Received, receive: Any, send: Any) -> None:
        async def start(status: int = 200, content_type: bytes = b"text/event-stream") -> None:
            headers = [(b"content-type", content_type)]
            await send({"type": "http.response.start", "status": status, "headers": headers})

        async def write(data: bytes, more: bool = True) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": more})

        async def wait_for_disconnect(timeout: float) -> bool:
            try:
                async with asyncio.timeout(timeout):
                    while (await receive())["type"] != "http.disconnect":
                        pass
            except TimeoutError:
                return False
            record.saw_disconnect()
            return True

        mode, _, arg = model.partition("-")
        if mode == "chunks":
            chunks = content_chunks(model, int(arg or 3))
            await start()
            await write(b": keep-alive comment, not data\n\n")
            await write(_frame(chunks[0]))
            # One frame split across two writes: the client must reassemble lines.
            split = _frame(chunks[1])
            await write(split[:9])
            await write(split[9:])
            for chunk in chunks[2:-1]:
                await write(_frame(chunk))
            await write(_frame(chunks[-1], space=False))
            await write(DONE, more=False)
        elif mode == "tools":
            await start()
            for chunk in tool_chunks(model):
                await write(_frame(chunk))
            await write(DONE, more=False)
        elif mode == "status":
            status = int(arg)
            message = ERROR_400_MESSAGE if status == 400 else f"fake upstream failure {status}"
            error = {"error": {"message": message, "type": "BadRequestError", "code": status}}
            await start(status, b"application/json")
            await write(json.dumps(error).encode(), more=False)
        elif mode == "sleep":
            await wait_for_disconnect(LONG_WAIT_S)
            await start(500, b"text/plain")
            await write(b"the fake slept through the whole test", more=False)
        elif mode == "stall":
            await start()
            await write(_frame(_delta(model, {"role": "assistant", "content": ""})))
            await wait_for_disconnect(LONG_WAIT_S)
            await write(DONE, more=False)
        elif mode == "malformed":
            await start()
            await write(_frame(_delta(model, {"role": "assistant", "content": ""})))
            await write(b'data: {"choices": [ this is not json\n\n')
            await write(DONE, more=False)
        elif mode == "error":  # error-chunk
            await start()
            await write(_frame(_delta(model, {"role": "assistant", "content": "partial"})))
            await write(_frame({"error": {"message": ERROR_CHUNK_MESSAGE, "code": 500}}))
            await write(DONE, more=False)
        elif mode == "truncated":
            await start()
            await write(_frame(_delta(model, {"role": "assistant", "content": "cut "})))
            # Returning without the final body message makes uvicorn drop the connection.
        elif mode == "not":  # not-sse
            completion = {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "not a stream"},
                        "finish_reason": "stop",
                    }
                ],
            }
            await start(200, b"application/json")
            await write(json.dumps(completion).encode(), more=False)
        elif mode == "script":
            done = sum(1 for m in record.body.get("messages", []) if m.get("role") in ("tool",))
            replies = SCRIPTS[arg]
            reply = replies[min(done, len(replies) - 1)]
            await start()
            if isinstance(reply, str):
                await write(_frame(_delta(model, {"role": "assistant", "content": reply})))
                await write(_frame(_delta(model, {}, "stop")))
            else:
                name, arguments = reply
                call = {"index": 0, "id": f"call_{done}", "type": "function"}
                call["function"] = {"name": name, "arguments": json.dumps(arguments)}
                await write(_frame(_delta(model, {"role": "assistant", "tool_calls": [call]})))
                await write(_frame(_delta(model, {}, "tool_calls")))
            await write(DONE, more=False)
        elif mode == "forever":
            await start()
            watcher = asyncio.ensure_future(wait_for_disconnect(LONG_WAIT_S))
            i = 0
            try:
                while not watcher.done():
                    await write(_frame(_delta(model, {"content": f"t{i} "})))
                    i += 1
                    await asyncio.wait({watcher}, timeout=0.02)
            finally:
                watcher.cancel()
            if not record.disconnected.is_set():
                await write(DONE, more=False)
        else:
            await start(404, b"application/json")
            await write(json.dumps({"error": {"message": f"no mode {model!r}"}}).encode(), False)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(fake: FakeUpstream | None = None) -> Iterator[FakeUpstream]:
    """Run `fake` (default: a fresh one) until the block ends: on a free 127.0.0.1 port, or on
    the port it had before, so a fake that was stopped comes back at the same address."""
    fake = fake or FakeUpstream()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", fake.port))
    port = fake.port = sock.getsockname()[1]
    config = uvicorn.Config(
        fake,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="fake-upstream", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake upstream did not start")
        time.sleep(0.01)
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


class FakeFleet:
    """Several fakes, each of which can be stopped (its address then refuses connections) and
    started again at the same address."""

    def __init__(self, size: int) -> None:
        self.fakes = [FakeUpstream() for _ in range(size)]
        self._running: dict[int, ExitStack] = {}
        for index in range(size):
            self.start(index)

    def start(self, index: int) -> None:
        if index not in self._running:
            stack = ExitStack()
            stack.enter_context(serve(self.fakes[index]))
            self._running[index] = stack

    def stop(self, index: int) -> None:
        self._running.pop(index).close()

    def close(self) -> None:
        for index in list(self._running):
            self.stop(index)
