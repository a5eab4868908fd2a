"""Small fake image services run for real over HTTP and a websocket: an OpenAI-style image API
and a ComfyUI server (uploads, queue, progress, history, downloads)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket


def png(colour: str, size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


class FakeImageServices:
    """An OpenAI-style image API and a ComfyUI server in one app.

    ComfyUI's outputs are `outputs` (history list -> file name -> bytes) when a test sets them,
    else one PNG per prompt; a workflow with a node of class `Fail` ends in an
    `execution_error`, one with `Hang` runs until it is interrupted, one with `Wait` stays
    queued until it is deleted from the queue."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.queued: dict[str, dict[str, Any]] = {}
        self.events: dict[str, asyncio.Event] = {}
        self.uploads: dict[str, bytes] = {}
        self.outputs: dict[str, dict[str, bytes]] = {}
        self.running: set[str] = set()
        self.interrupted: list[str] = []
        self.deleted: list[str] = []
        self.stopped: dict[str, asyncio.Event] = {}
        self.app = Starlette(
            routes=[
                Route("/v1/images/generations", self.generations, methods=["POST"]),
                Route("/v1/images/edits", self.edits, methods=["POST"]),
                Route("/upload/image", self.upload, methods=["POST"]),
                Route("/prompt", self.prompt, methods=["POST"]),
                Route("/history/{prompt_id}", self.history),
                Route("/view", self.view),
                Route("/queue", self.queue, methods=["GET", "POST"]),
                Route("/interrupt", self.interrupt, methods=["POST"]),
                WebSocketRoute("/ws", self.ws),
            ]
        )

    async def generations(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(
            {"path": "generations", "body": body, "auth": request.headers.get("authorization")}
        )
        if body["prompt"] == "fail":
            return JSONResponse({"error": {"message": "no capacity"}}, 503)
        width, height = (int(v) for v in body["size"].split("x"))
        data = [
            {"b64_json": base64.b64encode(png("green", (width, height))).decode()}
            for _ in range(body["n"])
        ]
        return JSONResponse({"created": 1, "data": data})

    async def edits(self, request: Request) -> Response:
        form = await request.form()
        upload = await form["image"].read()  # type: ignore[union-attr]
        self.requests.append(
            {"path": "edits", "prompt": form["prompt"], "image_bytes": len(upload)}
        )
        return JSONResponse({"data": [{"b64_json": base64.b64encode(png("purple")).decode()}]})

    async def upload(self, request: Request) -> Response:
        form = await request.form()
        file = form["image"]
        name = f"upload_{len(self.uploads)}_{file.filename}"  # type: ignore[union-attr]
        self.uploads[name] = await file.read()  # type: ignore[union-attr]
        return JSONResponse({"name": name, "subfolder": "", "type": "input"})

    async def prompt(self, request: Request) -> Response:
        body = await request.json()
        prompt_id = f"p{len(self.queued)}"
        self.queued[prompt_id] = body
        self.events.setdefault(body["client_id"], asyncio.Event()).set()
        return JSONResponse({"prompt_id": prompt_id, "number": 1})

    async def ws(self, websocket: WebSocket) -> None:
        await websocket.accept()
        client_id = websocket.query_params["clientId"]
        event = self.events.setdefault(client_id, asyncio.Event())
        await event.wait()
        prompt_id = next(k for k, v in self.queued.items() if v["client_id"] == client_id)
        await websocket.send_text(json.dumps({"type": "status", "data": {"status": {}}}))
        for step in range(1, 5):
            await websocket.send_text(
                json.dumps(
                    {"type": "progress", "data": {"value": step, "max": 4, "prompt_id": prompt_id}}
                )
            )
        await websocket.send_bytes(b"\x00preview")
        nodes = self.queued[prompt_id]["prompt"].values()
        classes = {node.get("class_type") for node in nodes}
        if classes & {"Hang", "Wait"}:
            if "Hang" in classes:
                self.running.add(prompt_id)
            stopped = self.stopped.setdefault(prompt_id, asyncio.Event())
            await stopped.wait()
            self.running.discard(prompt_id)
            return
        if any(node.get("class_type") == "Fail" for node in nodes):
            error = {
                "prompt_id": prompt_id,
                "node_type": "Fail",
                "exception_message": "CUDA out of memory",
            }
            await websocket.send_text(json.dumps({"type": "execution_error", "data": error}))
        await websocket.send_text(
            json.dumps({"type": "executing", "data": {"node": None, "prompt_id": prompt_id}})
        )
        await websocket.close()

    async def queue(self, request: Request) -> Response:
        if request.method == "POST":
            for prompt_id in (await request.json()).get("delete", []):
                self.deleted.append(prompt_id)
                self.stopped.setdefault(prompt_id, asyncio.Event()).set()
            return JSONResponse({})
        return JSONResponse(
            {
                "queue_running": [[1, p, {}, {}, []] for p in self.running],
                "queue_pending": [[2, p, {}, {}, []] for p in self.queued if p not in self.running],
            }
        )

    async def interrupt(self, request: Request) -> Response:
        prompt_id = (await request.json()).get("prompt_id")
        self.interrupted.append(prompt_id)
        self.stopped.setdefault(prompt_id, asyncio.Event()).set()
        return JSONResponse({})

    async def history(self, request: Request) -> Response:
        prompt_id = request.path_params["prompt_id"]
        listed = {
            kind: [{"filename": name, "subfolder": "", "type": "output"} for name in files]
            for kind, files in (self.outputs or {"images": {f"{prompt_id}.png": b""}}).items()
        }
        return JSONResponse({prompt_id: {"outputs": {"9": listed}}})

    async def view(self, request: Request) -> Response:
        name = request.query_params["filename"]
        for files in self.outputs.values():
            if name in files:
                return Response(files[name])
        return Response(png("yellow", (80, 60)), media_type="image/png")


@contextmanager
def serve(services: FakeImageServices) -> Iterator[str]:
    """Run the fake on a free local port; yields its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(services.app, host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)
