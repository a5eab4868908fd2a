"""`/metrics` on a port of its own: a second, minimal uvicorn server on the running event loop,
for scrapers on a private network (no API key; bind it where only they can reach it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import Receive, Scope, Send

from sogni_intelligence.http_server import QuietServer
from sogni_intelligence.observability.metrics import CONTENT_TYPE, Refresh, scrape

log = logging.getLogger(__name__)


class MetricsApp:
    """Answers `GET /metrics` and nothing else."""

    def __init__(self, refresh: Refresh | None) -> None:
        self.refresh = refresh

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] != "/metrics":
            await _answer(send, 404, b"text/plain", b"not found: only /metrics is served here\n")
        elif scope["method"] not in ("GET", "HEAD"):
            await _answer(send, 405, b"text/plain", b"method not allowed\n")
        else:
            body = await scrape(self.refresh)
            await _answer(send, 200, CONTENT_TYPE.encode(), body, scope["method"] == "HEAD")


async def _answer(send: Send, status: int, kind: bytes, body: bytes, head: bool = False) -> None:
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


class _EmbeddedServer(QuietServer):
    """A uvicorn server inside another process's loop: the process's own signal handling
    stays in charge (uvicorn's would take SIGTERM and SIGINT over)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class MetricsServer:
    def __init__(self, host: str, port: int, refresh: Refresh | None) -> None:
        config = uvicorn.Config(
            MetricsApp(refresh),
            host=host,
            port=port,
            lifespan="off",
            access_log=False,
            log_config=None,
        )
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None
        self.port = port

    async def start(self) -> None:
        """Listen before returning. The socket is bound here, so a port in use is an OSError
        (uvicorn's own bind would exit the whole process)."""
        config = self._server.config
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((config.host, config.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve([sock]), name="metrics server")
        while not self._server.started:
            if self._task.done():
                await self._task  # its exception, if any
                raise RuntimeError("the metrics server stopped while starting")
            await asyncio.sleep(0.01)
        log.info("metrics on http://%s:%d/metrics", config.host, self.port)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
