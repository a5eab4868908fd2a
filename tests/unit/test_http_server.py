"""The quiet uvicorn server: an exit asked from another thread is acted on at once, not at its
next once-a-second look (uvicorn's signal handler asks the same way), and the Date header
keeps changing every second."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import httpx
import uvicorn

from sogni_intelligence.http_server import LOOK_EVERY_S, QuietServer


async def _hello(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def _server() -> tuple[QuietServer, socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(_hello, lifespan="off", log_level="error", log_config=None)
    return QuietServer(config), sock


async def _started(server: QuietServer, sock: socket.socket) -> asyncio.Task[None]:
    task = asyncio.create_task(server.serve([sock]))
    while not server.started:
        await asyncio.sleep(0.005)
    return task


async def test_serves_and_stops_at_once_when_asked_from_another_thread() -> None:
    server, sock = _server()
    port = sock.getsockname()[1]
    task = await _started(server, sock)
    async with httpx.AsyncClient() as client:
        reply = await client.get(f"http://127.0.0.1:{port}/")
    assert reply.text == "hello"
    assert reply.headers["date"]
    await asyncio.sleep(0.05)  # inside the once-a-second wait
    asked = time.monotonic()
    threading.Thread(target=setattr, args=(server, "should_exit", True)).start()
    await asyncio.wait_for(task, 5)
    assert time.monotonic() - asked < LOOK_EVERY_S / 2
    assert server.should_exit


async def test_date_header_changes_every_second() -> None:
    server, sock = _server()
    port = sock.getsockname()[1]
    task = await _started(server, sock)
    try:
        async with httpx.AsyncClient() as client:
            first = (await client.get(f"http://127.0.0.1:{port}/")).headers["date"]
            await asyncio.sleep(2.2)
            later = (await client.get(f"http://127.0.0.1:{port}/")).headers["date"]
        assert later != first
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 5)
