"""End-to-end fixtures: the real server process on a free port with the real default model."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from sogni_intelligence.config import PUBLIC_MODEL_IDS
from tests.conftest import POSTGRES_URL


@dataclass
class RunningServer:
    url: str
    key: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sogni_intelligence.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def start_workflow(server: RunningServer, plan: dict[str, Any]) -> str:
    """Start a creative workflow from a plan; its id."""
    started = httpx.post(
        f"{server.url}/v1/creative-agent/workflows",
        headers={"Authorization": f"Bearer {server.key}"},
        json={"input": plan},
        timeout=10,
    )
    assert started.status_code == 201, started.text
    return started.json()["data"]["workflow"]["workflowId"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not become healthy:\n{log.read_text()}")


@contextmanager
def running_server(
    data: Path,
    *serve_args: str,
    settings: dict[str, str] | None = None,
    model: dict[str, Any] | None = None,
    log_name: str = "server.log",
) -> Iterator[RunningServer]:
    """`sogni-intelligence serve` on a free port with the real default model, and a key;
    `settings` are extra `SOGNI_*` variables, `model` extra fields of the model entry."""
    port = free_port()
    models = [
        {
            "id": "smollm2-135m-instruct",
            "aliases": list(PUBLIC_MODEL_IDS),
            "n_parallel": 2,
            "n_ctx": 8192,
            **(model or {}),
        }
    ]
    env = {
        **os.environ,
        "SOGNI_DATA_DIR": str(data),
        "SOGNI_PORT": str(port),
        "SOGNI_KEY_CACHE_SECONDS": "0",
        "SOGNI_MODELS": json.dumps(models),
        "SOGNI_LOG_LEVEL": "warning",
        **(settings or {}),
    }
    env.pop("SOGNI_CONFIG", None)
    log = data / log_name
    running = RunningServer(f"http://127.0.0.1:{port}", "", env, log)
    created = running.cli("keys", "--json", "create", "--name", "e2e")
    assert created.returncode == 0, created.stderr
    running.key = json.loads(created.stdout)["key"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sogni_intelligence.cli.main", "serve", *serve_args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running.process = process
    try:
        wait_healthy(running.url, process, log)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("server")) as running:
        yield running


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A database of its own: no other test's executors or workflows to take over."""
    if not POSTGRES_URL:
        pytest.skip("SOGNI_TEST_POSTGRES_URL is not set (make test starts a server)")
    name = f"sogni_fresh_{secrets.token_hex(4)}"
    asyncio.run(_admin(f"CREATE DATABASE {name}"))
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(_admin(f"DROP DATABASE {name} WITH (FORCE)"))


async def _admin(statement: str) -> None:
    assert POSTGRES_URL is not None
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()
