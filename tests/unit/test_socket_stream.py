"""`stream_chat` against a unix-socket server that answers with prepared bytes: the response
shapes llama.cpp's listener sends (chunked events, error bodies, an error event, a cut-off
stream), split at awkward places. The real listener is exercised by the embedded engine's
integration tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sogni_intelligence.llm.protocol import EngineError
from sogni_intelligence.llm.socket_stream import Departures, stream_chat

CHUNKS = [
    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}]},
    {"choices": [{"index": 0, "delta": {"content": "Hel"}}]},
    {"choices": [{"index": 0, "delta": {"content": "lo, wörld"}, "finish_reason": "stop"}]},
    {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}},
]


def _events(chunks: list[dict[str, object]]) -> bytes:
    body = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
    return body + b"data: [DONE]\n\n"


def _chunked(body: bytes, size: int) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def _response(status: str, body: bytes, *, chunk: int | None = None) -> bytes:
    if chunk is None:
        head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        return head + body
    head = f"HTTP/1.1 {status}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    return head + _chunked(body, chunk)


class Answering:
    """A unix-socket server that reads one request and writes `reply` in `write_size`-byte
    writes (0: all at once), then closes; it keeps the request it got."""

    def __init__(self, path: Path, reply: bytes, write_size: int = 0) -> None:
        self.path = str(path)
        self.reply = reply
        self.write_size = write_size
        self.requests: list[bytes] = []
        self.closed_by_client = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        self.requests.append(head + await reader.readexactly(length))
        size = self.write_size or len(self.reply)
        for i in range(0, len(self.reply), size):
            writer.write(self.reply[i : i + size])
            await writer.drain()
            await asyncio.sleep(0)
        if not self.reply.endswith(b"0\r\n\r\n") and b"Content-Length" not in self.reply:
            # A stream left open: wait for the client to go away.
            await reader.read()
            self.closed_by_client.set()
        writer.close()


async def _collect(stream: AsyncIterator[dict[str, object]]) -> list[dict[str, object]]:
    return [chunk async for chunk in stream]


def _chat(socket_path: Path, request: dict[str, object] | None = None) -> AsyncIterator[Any]:
    """`stream_chat` on its own: no other request connects beside it."""
    return stream_chat(str(socket_path), request or {}, Departures())


@pytest.fixture
def socket_path(tmp_path: Path) -> Path:
    return tmp_path / "llm.sock"


async def _serve(server: Answering) -> asyncio.AbstractServer:
    return await asyncio.start_unix_server(server.handle, server.path)


@pytest.mark.parametrize(("chunk", "write_size"), [(4096, 0), (37, 5), (1, 3)])
async def test_events_arrive_whole_however_the_bytes_are_split(
    socket_path: Path, chunk: int, write_size: int
) -> None:
    server = Answering(socket_path, _response("200 OK", _events(CHUNKS), chunk=chunk), write_size)
    async with await _serve(server):
        got = await _collect(_chat(socket_path, {"messages": [], "stream": True}))
    assert got == CHUNKS
    request = server.requests[0]
    assert request.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert json.loads(request.split(b"\r\n\r\n", 1)[1]) == {"messages": [], "stream": True}


async def test_an_error_status_becomes_the_engine_error_a_client_sees(socket_path: Path) -> None:
    error = {"code": 400, "message": "too long", "type": "exceed_context_size_error"}
    body = json.dumps({"error": error}).encode()
    async with await _serve(Answering(socket_path, _response("400 Bad Request", body))):
        with pytest.raises(EngineError) as info:
            await _collect(_chat(socket_path))
    assert (info.value.status, info.value.code) == (400, "context_length_exceeded")
    assert info.value.message == "too long"


async def test_an_error_body_that_is_not_json_becomes_the_message(socket_path: Path) -> None:
    reply = _response("500 Internal Server Error", b"engine on fire", chunk=4)
    async with await _serve(Answering(socket_path, reply)):
        with pytest.raises(EngineError) as info:
            await _collect(_chat(socket_path))
    assert (info.value.status, info.value.message) == (500, "engine on fire")


async def test_an_error_event_ends_the_stream_after_the_chunks_before_it(
    socket_path: Path,
) -> None:
    error = {"code": 503, "message": "decode failed", "type": "unavailable_error"}
    body = _events(CHUNKS[:2])[: -len(b"data: [DONE]\n\n")]
    body += b"error: " + json.dumps(error).encode() + b"\n\n"
    async with await _serve(Answering(socket_path, _response("200 OK", body, chunk=16))):
        got: list[dict[str, object]] = []
        with pytest.raises(EngineError) as info:
            async for chunk in _chat(socket_path):
                got.append(chunk)
    assert got == CHUNKS[:2]
    assert (info.value.status, info.value.message) == (503, "decode failed")


async def test_a_stream_cut_off_midway_is_an_error_not_an_end(socket_path: Path) -> None:
    whole = _response("200 OK", _events(CHUNKS), chunk=64)

    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(whole[: len(whole) // 2])  # then gone, without the last chunk
        await writer.drain()
        writer.close()

    async with await asyncio.start_unix_server(cut, str(socket_path)):
        with pytest.raises(EngineError) as info:
            await _collect(_chat(socket_path))
    assert info.value.status == 502
    assert "closed the stream early" in info.value.message


async def test_closing_the_stream_closes_the_connection(socket_path: Path) -> None:
    # A chunked response that never ends, as a long generation looks.
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    first = _events(CHUNKS[:2])[: -len(b"data: [DONE]\n\n")]
    server = Answering(socket_path, head + b"%x\r\n%s\r\n" % (len(first), first))
    async with await _serve(server):
        stream = _chat(socket_path)
        assert await anext(stream) == CHUNKS[0]
        await stream.aclose()
        await asyncio.wait_for(server.closed_by_client.wait(), 5)


async def test_an_event_that_is_not_json_is_an_error(socket_path: Path) -> None:
    body = _events(CHUNKS[:1]).replace(b"data: [DONE]", b"data: {not json")
    async with await _serve(Answering(socket_path, _response("200 OK", body, chunk=8))):
        with pytest.raises(EngineError) as info:
            await _collect(_chat(socket_path))
    assert info.value.status == 502
    assert "unreadable event" in info.value.message


async def test_an_error_inside_a_data_event_ends_the_stream(socket_path: Path) -> None:
    error = {"code": 500, "message": "image input is not supported - hint: mmproj"}
    body = b"data: " + json.dumps({"error": error}).encode() + b"\n\n"
    async with await _serve(Answering(socket_path, _response("200 OK", body, chunk=8))):
        with pytest.raises(EngineError) as info:
            await _collect(_chat(socket_path))
    assert (info.value.status, info.value.code) == (400, "model_not_vision")


async def test_an_engine_that_is_not_listening_is_a_503(socket_path: Path) -> None:
    with pytest.raises(EngineError) as info:
        await _collect(_chat(socket_path))
    assert info.value.status == 503
    assert "cannot be reached" in info.value.message


class HeldConnects:
    """Makes the loop's unix connects to `held` wait until `release` is set (the others go
    through), so a test decides when a request is still connecting."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, held: str) -> None:
        self.release = asyncio.Event()
        loop = asyncio.get_running_loop()
        connect = loop.create_unix_connection

        async def create_unix_connection(factory: object, path: str) -> object:
            if path == held:
                await self.release.wait()
            return await connect(factory, path)  # type: ignore[arg-type]

        monkeypatch.setattr(loop, "create_unix_connection", create_unix_connection)


async def _listening(path: Path) -> asyncio.AbstractServer:
    async def ignore(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    return await asyncio.start_unix_server(ignore, str(path))


async def test_a_connected_request_waits_for_one_still_connecting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, slow = tmp_path / "fast.sock", tmp_path / "slow.sock"
    held = HeldConnects(monkeypatch, str(slow))
    departures = Departures()
    async with await _listening(fast), await _listening(slow):
        monkeypatch.setattr("sogni_intelligence.llm.socket_stream.TOGETHER_WAIT_S", 30.0)
        first = asyncio.create_task(departures.connect(str(fast)))
        second = asyncio.create_task(departures.connect(str(slow)))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not first.done()  # connected, but the second one is still connecting
        held.release.set()
        connected = await asyncio.gather(first, second)
        for transport, _ in connected:
            transport.close()


async def test_the_wait_is_bounded_and_a_cancelled_connect_is_not_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, slow = tmp_path / "fast.sock", tmp_path / "slow.sock"
    HeldConnects(monkeypatch, str(slow))  # never released
    departures = Departures()
    async with await _listening(fast), await _listening(slow):
        stuck = asyncio.create_task(departures.connect(str(slow)))
        await asyncio.sleep(0)
        transport, _ = await asyncio.wait_for(departures.connect(str(fast)), 5)  # 5 ms at most
        transport.close()
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        monkeypatch.setattr("sogni_intelligence.llm.socket_stream.TOGETHER_WAIT_S", 30.0)
        alone = asyncio.create_task(departures.connect(str(fast)))
        for _ in range(20):
            await asyncio.sleep(0)
        assert alone.done()  # nobody is connecting any more: it did not wait
        (await alone)[0].close()
