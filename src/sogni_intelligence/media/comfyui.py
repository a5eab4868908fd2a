"""A small ComfyUI client: upload inputs, queue an API-format workflow, follow its progress over
the websocket, read the history and download what it made. A run that is cancelled or runs out
of time is interrupted (or taken off ComfyUI's queue), so the GPU does not go on working for
nobody.

The image backend and the per-tool bindings both run workflows through it, so they fail the
same way: every failure is a tool error the LLM can read, carrying ComfyUI's own message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from typing import Any
from urllib.parse import urlencode

import httpx
import websockets

from sogni_intelligence.errors import ToolError
from sogni_intelligence.media.progress import Progress

#: The history output lists that hold files: images, animated or video outputs (custom nodes
#: name them `gifs` or `videos`) and audio.
OUTPUT_LISTS = ("images", "gifs", "videos", "audio")
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")

log = logging.getLogger(__name__)


def fill_workflow(node: Any, values: dict[str, Any]) -> Any:
    """Substitute `{{name}}` placeholders; a string that is only a placeholder takes the value's
    own type (numbers stay numbers)."""
    if isinstance(node, dict):
        return {k: fill_workflow(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [fill_workflow(v, values) for v in node]
    if isinstance(node, str):
        for name, value in values.items():
            token = "{{" + name + "}}"
            if node == token:
                return value
            node = node.replace(token, str(value))
    return node


def placeholders(node: Any) -> set[str]:
    """The placeholder names a workflow uses."""
    return set(PLACEHOLDER.findall(json.dumps(node)))


class ComfyUIClient:
    """One ComfyUI server. `run` raises GPU_WORKER_FAILED for anything that goes wrong, and
    PROVIDER_TIMEOUT for a workflow that takes longer than `timeout_s` (both retryable: the
    GPU may be busy)."""

    def __init__(self, base_url: str, timeout_s: float, name: str = "ComfyUI") -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=60)

    async def close(self) -> None:
        await self._client.aclose()

    async def upload(self, data: bytes, filename: str) -> str:
        """Put an input file where LoadImage (and the video/audio loaders) find it; returns the
        name to put into the workflow."""
        try:
            response = await self._client.post(
                "/upload/image",
                files={"image": (filename, data)},
                data={"type": "input", "overwrite": "true"},
            )
            self._check(response, "refused the upload")
            body = response.json()
            name = body["name"]
            return f"{body['subfolder']}/{name}" if body.get("subfolder") else name
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise self._failure(exc) from exc

    async def run(self, workflow: dict[str, Any], progress: Progress) -> list[bytes]:
        """Every file the workflow's outputs hold, in node order."""
        try:
            return await asyncio.wait_for(self._run(workflow, progress), self.timeout_s)
        except ToolError:
            raise
        except TimeoutError as exc:
            raise ToolError(
                "PROVIDER_TIMEOUT",
                f"{self.name} did not finish within {self.timeout_s:g} s",
                retryable=True,
            ) from exc
        except (httpx.HTTPError, OSError, ValueError, KeyError, TypeError) as exc:
            raise self._failure(exc) from exc

    async def _run(self, workflow: dict[str, Any], progress: Progress) -> list[bytes]:
        client_id = secrets.token_hex(8)
        query = urlencode({"clientId": client_id})
        ws_url = self.base_url.replace("http", "ws", 1) + "/ws?" + query
        async with websockets.connect(ws_url) as socket:
            queued = await self._client.post(
                "/prompt", json={"prompt": workflow, "client_id": client_id}
            )
            self._check(queued, "refused the workflow")
            prompt_id = queued.json()["prompt_id"]
            try:
                await self._follow(socket, prompt_id, progress)
            except asyncio.CancelledError:
                # Cancelled or out of time: free the GPU instead of leaving the job to run on.
                await asyncio.shield(self._stop(prompt_id))
                raise
        history = await self._client.get(f"/history/{prompt_id}")
        self._check(history, "lost the job")
        files = []
        for node in history.json()[prompt_id]["outputs"].values():
            for listed in OUTPUT_LISTS:
                for item in node.get(listed, []):
                    params = {k: item.get(k, "") for k in ("filename", "subfolder", "type")}
                    response = await self._client.get("/view", params=params)
                    self._check(response, "did not send an output")
                    files.append(response.content)
        if not files:
            raise ToolError("GPU_WORKER_FAILED", f"{self.name} finished without outputs")
        return files

    async def _follow(self, socket: Any, prompt_id: str, progress: Progress) -> None:
        """Relay the prompt's progress until it has run; its failure is a tool error."""
        async for raw in socket:
            if isinstance(raw, bytes):  # preview frames
                continue
            message = json.loads(raw)
            data = message.get("data") or {}
            if data.get("prompt_id") not in (None, prompt_id):
                continue
            if message.get("type") == "progress" and data.get("max"):
                progress(min(0.99, data["value"] / data["max"]), "rendering")
            elif message.get("type") == "execution_error":
                detail = data.get("exception_message") or data
                where = f" in node {data['node_type']}" if data.get("node_type") else ""
                raise ToolError("GPU_WORKER_FAILED", f"{self.name} failed{where}: {detail}")
            elif message.get("type") == "executing" and data.get("node") is None:
                return

    async def _stop(self, prompt_id: str) -> None:
        """Interrupt the prompt if it is the one running, else take it off the queue; checking
        first, because an older ComfyUI interrupts whatever runs, whoever queued it."""
        try:
            queue = (await self._client.get("/queue", timeout=5)).json()
            running = {item[1] for item in queue.get("queue_running", [])}
            if prompt_id in running:
                await self._client.post("/interrupt", json={"prompt_id": prompt_id}, timeout=5)
            else:
                await self._client.post("/queue", json={"delete": [prompt_id]}, timeout=5)
        except (httpx.HTTPError, ValueError, KeyError, TypeError, IndexError) as exc:
            log.warning("%s: could not stop prompt %s: %s", self.name, prompt_id, exc)

    def _check(self, response: httpx.Response, what: str) -> None:
        if response.status_code >= 400:
            raise ToolError(
                "GPU_WORKER_FAILED",
                f"{self.name} {what} ({response.status_code}): {response.text[:300]}",
                retryable=response.status_code >= 500,
            )

    def _failure(self, exc: Exception) -> ToolError:
        return ToolError("GPU_WORKER_FAILED", f"{self.name} failed: {exc}", retryable=True)
