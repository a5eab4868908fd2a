"""Benchmark: our HTTP server against llama.cpp's own OpenAI server on the same GGUF.

The peer is llama.cpp's server as xllamacpp ships it (`xllamacpp.Server` listening on a TCP
port), started by this script in its own process with the parameters our embedded engine
uses for the default model (slots, context, threads, prompt cache). Both run at once, idle
but for the request in flight (one request at a time: small machines have few cores), with the
same HTTP client and prompts, and every metric is taken in pairs, one on each server back to
back (see `Pairing`). It prints each side's median and the median ratio ours/peer over the
pairs:

* p50 time to first token (streaming; first non-empty content delta),
* p50 latency of a 32-token completion (a plain, non-streaming request),
* single-stream tokens/s (completion tokens from usage / request time),
* aggregate tokens/s and the largest time to first token with 4 and with 16 concurrent
  streams,
* the largest time to first token of a burst of 4 short streams sent at once, on prompts
  already in the prompt cache,
* and, to tell where a gap comes from, each server's CPU time per generated token.

Targets: at least 0.97x the peer's throughput at 1, 4 and 16 streams, p50 time to first
token within +3 ms, the largest time to first token of a burst of 4 streams within 1.2x.

Requests use greedy sampling (temperature 0, a fixed seed) and the same prompts in the same
order, so both sides generate the same tokens; the table says how many 32-token outputs
matched.

    .venv/bin/python benchmarks/bench_chat.py              # table
    .venv/bin/python benchmarks/bench_chat.py --json       # JSON object
    .venv/bin/python benchmarks/bench_chat.py --threads 1  # a core left to the HTTP side
    .venv/bin/python benchmarks/bench_chat.py --peer-vs-peer  # the pairing's own noise
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench_idle import cpu_seconds
from sogni_intelligence.config import PUBLIC_MODEL_IDS, ModelConfig, Settings
from sogni_intelligence.llm.embedded import engine_params, resolve_model_path

LATENCY_TOKENS = 32
MAX_ADDED_TTFT_MS = 3.0
MIN_THROUGHPUT_RATIO = 0.97
MAX_TTFT_MAX_RATIO = 1.2
BURST = 4  # concurrent streams whose largest time to first token has a target
#: First tokens of one burst further apart than this came from different decode steps.
SPLIT_MS = 10.0
LLAMA_DEFAULT_POLL = 50  # the peer keeps llama.cpp's own default, whatever ours uses

PROMPTS = (
    "Write a long story about a lighthouse keeper who finds a message in a bottle.",
    "Write a long story about a dragon who learns to bake bread in a small village.",
    "Write a long story about two robots crossing a desert to find the sea.",
    "Write a long story about a girl who can talk to the trees of an old forest.",
    "Write a long story about a sailor lost in a storm near a mysterious island.",
    "Write a long story about a detective cat solving a mystery in a big city.",
)


@dataclass
class Sample:
    start: float
    end: float
    first: float | None = None
    tokens: int = 0
    text: str = ""

    @property
    def elapsed(self) -> float:
        return self.end - self.start

    @property
    def ttft(self) -> float:
        if self.first is None:
            raise RuntimeError("the stream had no content")
        return self.first - self.start


@dataclass
class SideResult:
    ttft_ms: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    single_tps: list[float] = field(default_factory=list)
    aggregate_tps: dict[int, list[float]] = field(default_factory=dict)
    ttft_max_ms: dict[int, list[float]] = field(default_factory=dict)
    burst_ttft_max_ms: list[float] = field(default_factory=list)
    bursts_split: int = 0  # bursts whose first tokens came in two waves (see SPLIT_MS)
    texts: list[str] = field(default_factory=list)
    short_streams: int = 0  # streams that stopped before max_tokens
    cpu_s: float = 0.0  # the server process's CPU time over its measurements
    tokens: int = 0  # completion tokens generated over them


def request_body(index: int, max_tokens: int, seed: int) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": PROMPTS[index % len(PROMPTS)]}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "seed": seed,
    }


def model_path() -> str:
    return str(resolve_model_path(ModelConfig(id="bench").path))


_cleanups: list[Any] = []  # run by the watchdog before it ends a stuck run


def start_watchdog(seconds: float) -> None:
    """End the whole run if it takes longer than `seconds`: never leave a stuck benchmark."""

    def fire() -> None:
        print(f"bench_chat: gave up after {seconds:g} s (stuck?)", file=sys.stderr, flush=True)
        for cleanup in list(_cleanups):
            try:
                cleanup()
            except Exception as exc:
                print(f"bench_chat: cleanup failed: {exc}", file=sys.stderr, flush=True)
        os._exit(3)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


# --------------------------------------------------------------------------- the peer


def serve_peer(port: int, threads: int) -> None:
    """llama.cpp's own OpenAI server (xllamacpp's `Server` on a TCP port) with the parameters
    `EmbeddedEngine` builds for the default model; runs until killed."""
    import xllamacpp

    config = ModelConfig(id="bench", threads=threads)
    params = engine_params(config, Path(model_path()), "127.0.0.1")
    params.port = port
    params.cpuparams.poll = params.cpuparams_batch.poll = LLAMA_DEFAULT_POLL
    server = xllamacpp.Server(params)
    threading.Event().wait()  # it serves while this frame holds it, until the process is killed
    del server


class PeerServer:
    """`serve_peer` in a subprocess: the same process boundary as our server has. `name` is
    the side it plays (`ours` too in a `--peer-vs-peer` run)."""

    def __init__(self, threads: int, name: str = "peer") -> None:
        self.name = name
        self.port = free_port()
        self.key = ""
        self._threads_flag = ("--threads", str(threads))
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> None:
        _cleanups.append(self.stop)
        self._proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-peer", str(self.port), *self._threads_flag],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_healthy(self._proc, f"http://127.0.0.1:{self.port}/health", timeout, lambda: "")

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("the peer is not running")
        return self._proc.pid

    def stop(self) -> None:
        stop_process(self._proc)
        self._proc = None
        if self.stop in _cleanups:
            _cleanups.remove(self.stop)


def wait_healthy(proc: subprocess.Popen[bytes], url: str, timeout: float, log_tail: Any) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited early:\n{log_tail()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url}: the server did not become healthy:\n{log_tail()}")


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- our server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OurServer:
    """`sogni-intelligence serve` in a subprocess with default settings and a fresh data dir
    (but for the engine's thread count, when one is given)."""

    name = "ours"

    def __init__(self, threads: int) -> None:
        self.data_dir = tempfile.mkdtemp(prefix="bench-sogni-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path = os.path.join(self.data_dir, "server.log")
        # Defaults only: drop any inherited SOGNI_* settings (a config file, other models).
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("SOGNI_")}
        self._env.update(
            SOGNI_DATA_DIR=self.data_dir,
            SOGNI_HOST="127.0.0.1",
            SOGNI_PORT=str(self.port),
            SOGNI_LOG_LEVEL="warning",
        )
        if threads:  # the default model, as it is but for its threads
            default = Settings.model_fields["models"].default_factory()[0]  # type: ignore[misc]
            model = default.model_copy(update={"threads": threads}).model_dump(mode="json")
            self._env["SOGNI_MODELS"] = json.dumps([model])

    def _cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "sogni_intelligence.cli.main", *args]

    def start(self, timeout: float = 180.0) -> None:
        _cleanups.append(self.stop)
        created = subprocess.run(
            self._cli("keys", "--json", "create", "--name", "bench"),
            env=self._env,
            capture_output=True,
            check=True,
            timeout=120,
        )
        self.key = json.loads(created.stdout)["key"]
        with open(self._log_path, "wb") as log:
            self._proc = subprocess.Popen(
                self._cli("serve"), env=self._env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_healthy(self._proc, f"{self.url}/health", timeout, self.log_tail)

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("our server is not running")
        return self._proc.pid

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return Path(self._log_path).read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        stop_process(self._proc)
        self._proc = None
        shutil.rmtree(self.data_dir, ignore_errors=True)
        if self.stop in _cleanups:
            _cleanups.remove(self.stop)


class HttpBackend:
    """A lean HTTP/1.1 client on raw asyncio streams (one connection per request), so the
    figures measure the server rather than a client library's own overhead. Both servers get
    the same bytes but for the key and `sogni_tools: none` (the peer ignores the field)."""

    def __init__(self, server: OurServer | PeerServer, model: str) -> None:
        self._server = server
        self._model = model
        self.name = server.name

    @property
    def pid(self) -> int:
        return self._server.pid

    async def _post(self, body: dict[str, Any]) -> tuple[asyncio.StreamReader, Any, int]:
        # Without hosted tools: the same prompt as the peer gets, not the agent's.
        payload = json.dumps({**body, "model": self._model, "sogni_tools": "none"}).encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", self._server.port)
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {self._server.key or 'none'}\r\n"
            f"Content-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        ).encode()
        writer.write(head + payload)
        status = int((await reader.readline()).split()[1])
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        return reader, writer, status

    async def stream(self, body: dict[str, Any]) -> Sample:
        request = {**body, "stream": True, "stream_options": {"include_usage": True}}
        first: float | None = None
        usage: dict[str, Any] = {}
        start = time.perf_counter()
        reader, writer, status = await self._post(request)
        try:
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {(await reader.read())[:500]!r}")
            # Chunked transfer encoding; SSE lines inside. Parse JSON only for the first
            # content and for the usage chunk.
            while size := int((await reader.readline()).strip() or b"0", 16):
                data = await reader.readexactly(size + 2)
                for line in data.split(b"\n"):
                    if not line.startswith(b"data: {"):
                        continue
                    if first is None and b'"content":"' in line and b'"content":""' not in line:
                        first = time.perf_counter()
                    elif b'"usage"' in line:
                        usage = json.loads(line[6:])["usage"]
                    elif b'"error"' in line:
                        raise RuntimeError(f"stream error: {line[:500]!r}")
        finally:
            writer.close()
        end = time.perf_counter()
        return Sample(start, end, first, int(usage.get("completion_tokens", 0)))

    async def complete(self, body: dict[str, Any]) -> Sample:
        start = time.perf_counter()
        reader, writer, status = await self._post(body)
        try:
            raw = await reader.read()
        finally:
            writer.close()
        end = time.perf_counter()
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {raw[:500]!r}")
        reply = json.loads(raw)
        text = reply["choices"][0]["message"].get("content") or ""
        return Sample(start, end, None, int(reply["usage"]["completion_tokens"]), text)


# --------------------------------------------------------------------------- measurement


def progress(args: argparse.Namespace, message: str) -> None:
    if not args.json or args.verbose:
        print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


#: One measurement on one server: the value, and the completion tokens it generated.
Measurement = Callable[[HttpBackend, int], Awaitable[tuple[float, int]]]


class Pairing:
    """Takes every measurement on both servers back to back, in the order peer, ours, ours,
    peer, peer, ours, ... (each side goes first half the time), after a short pause that lets
    the previous request's threads settle. Sample i of one side pairs with sample i of the
    other: the two were taken a second or two apart, so the drift of a shared machine (the
    peer alone has run at 102 and at 129 tok/s on this machine within minutes) hits both
    alike, and the ratio of a pair keeps what really differs. Each side's CPU time (user and
    system, every thread of its process) is added up over its own measurements."""

    def __init__(self, peer: HttpBackend, ours: HttpBackend, gap_s: float) -> None:
        self.sides = {"peer": peer, "ours": ours}
        self.results = {"peer": SideResult(), "ours": SideResult()}
        self._gap_s = gap_s
        self._turn = 0

    async def take(
        self, n: int, measure: Measurement, samples: Callable[[SideResult], list[float]]
    ) -> None:
        for i in range(n):
            order = ("peer", "ours") if self._turn % 4 in (0, 3) else ("ours", "peer")
            self._turn += 1
            for name in order:
                await asyncio.sleep(self._gap_s)
                backend, result = self.sides[name], self.results[name]
                cpu_before = cpu_seconds(backend.pid)
                value, tokens = await measure(backend, i)
                result.cpu_s += cpu_seconds(backend.pid) - cpu_before
                result.tokens += tokens
                samples(result).append(value)


async def measure(peer: HttpBackend, ours: HttpBackend, args: argparse.Namespace) -> Pairing:
    seed = args.seed
    for backend in (peer, ours):
        progress(args, f"{backend.name}: warm-up")
        # Warm-up: one stream, then every slot once.
        await backend.stream(request_body(0, 32, seed))
        await asyncio.gather(*(backend.stream(request_body(i, 16, seed)) for i in range(4)))
    pairing = Pairing(peer, ours, args.gap)

    async def ttft(backend: HttpBackend, i: int) -> tuple[float, int]:
        # One prompt throughout: its prefix is cached after the first run, so the figure is
        # the serving path plus one decoded token, not the luck of slot and prompt cache.
        sample = await backend.stream(request_body(0, args.ttft_tokens, seed))
        return sample.ttft * 1000, sample.tokens

    async def burst(backend: HttpBackend, i: int) -> tuple[float, int]:
        # The warm-up's prompts, cached by now, as in the concurrent rounds: the figure is
        # the serving path of streams arriving together, not prompt processing.
        samples = await asyncio.gather(
            *(backend.stream(request_body(j, args.ttft_tokens, seed)) for j in range(BURST))
        )
        first_tokens = [s.ttft * 1000 for s in samples]
        pairing.results[backend.name].bursts_split += (
            max(first_tokens) - min(first_tokens) > SPLIT_MS
        )
        return max(first_tokens), sum(s.tokens for s in samples)

    async def latency(backend: HttpBackend, i: int) -> tuple[float, int]:
        sample = await backend.complete(request_body(i, LATENCY_TOKENS, seed))
        result = pairing.results[backend.name]
        result.texts.append(sample.text)
        result.short_streams += sample.tokens < LATENCY_TOKENS
        return sample.elapsed * 1000, sample.tokens

    async def single(backend: HttpBackend, i: int) -> tuple[float, int]:
        sample = await backend.stream(request_body(i, args.stream_tokens, seed))
        pairing.results[backend.name].short_streams += sample.tokens < args.stream_tokens
        return sample.tokens / sample.elapsed, sample.tokens

    progress(args, f"time to first token x{args.runs}")
    await pairing.take(args.runs, ttft, lambda r: r.ttft_ms)
    progress(args, f"bursts of {BURST} streams x{args.bursts}")
    await pairing.take(args.bursts, burst, lambda r: r.burst_ttft_max_ms)
    progress(args, f"{LATENCY_TOKENS}-token completions x{args.runs}")
    await pairing.take(args.runs, latency, lambda r: r.latency_ms)
    progress(args, f"single stream x{args.stream_runs}")
    await pairing.take(args.stream_runs, single, lambda r: r.single_tps)

    for n in args.concurrency:

        async def concurrent(backend: HttpBackend, r: int, n: int = n) -> tuple[float, int]:
            samples = await asyncio.gather(
                *(
                    backend.stream(request_body(r * n + j, args.concurrent_tokens, seed))
                    for j in range(n)
                )
            )
            result = pairing.results[backend.name]
            result.ttft_max_ms.setdefault(n, []).append(max(s.ttft for s in samples) * 1000)
            result.short_streams += sum(s.tokens < args.concurrent_tokens for s in samples)
            wall = max(s.end for s in samples) - min(s.start for s in samples)
            tokens = sum(s.tokens for s in samples)
            return tokens / wall, tokens

        progress(args, f"{n} concurrent streams x{args.rounds}")
        await pairing.take(
            args.rounds, concurrent, lambda r, n=n: r.aggregate_tps.setdefault(n, [])
        )
    return pairing


def run_loop(coro: Any) -> Any:
    try:
        import uvloop  # a cheaper client loop: the client shares the CPU with the server
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def run_both(args: argparse.Namespace) -> Pairing:
    """Both servers up at once (idle but for the request in flight), measured in pairs."""
    peer = PeerServer(args.threads)
    ours = PeerServer(args.threads, "ours") if args.peer_vs_peer else OurServer(args.threads)
    try:
        for server in (peer, ours):
            progress(args, f"starting {server.name}")
            server.start()
        model = PUBLIC_MODEL_IDS[0]
        return run_loop(measure(HttpBackend(peer, model), HttpBackend(ours, model), args))
    finally:
        ours.stop()
        peer.stop()


# --------------------------------------------------------------------------- report


def _row(
    name: str, unit: str, peer: list[float], ours: list[float], target: str, met: Any
) -> dict[str, Any]:
    """Each side's median, and the pairs' median ratio and difference (what the target
    judges: the pairs were measured back to back, the medians minutes apart). The middle half
    of the pairs' ratios (first to third quartile) says how far a median of so few pairs can
    be trusted: on a shared machine the same work runs faster or slower from one second to
    the next."""
    median = statistics.median
    ratios = [o / p for p, o in zip(peer, ours, strict=True)]
    ratio = median(ratios)
    added = median(o - p for p, o in zip(peer, ours, strict=True))
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratio] * 3
    return {
        "metric": name,
        "unit": unit,
        "peer": median(peer),
        "ours": median(ours),
        "ratio": ratio,
        "ratio_middle_half": [quartiles[0], quartiles[2]],
        "added_ms": added if unit == "ms" else None,
        "target": target,
        "met": bool(met(ratio, added)),
    }


def report(peer: SideResult, ours: SideResult) -> dict[str, Any]:
    def throughput(name: str, p: list[float], o: list[float]) -> dict[str, Any]:
        target = f">= {MIN_THROUGHPUT_RATIO:g}x"
        return _row(name, "tok/s", p, o, target, lambda ratio, _: ratio >= MIN_THROUGHPUT_RATIO)

    rows = [
        _row(
            "p50 time to first token",
            "ms",
            peer.ttft_ms,
            ours.ttft_ms,
            f"<= +{MAX_ADDED_TTFT_MS:g} ms",
            lambda _, added: added <= MAX_ADDED_TTFT_MS,
        ),
        _row(
            f"p50 {LATENCY_TOKENS}-token latency",
            "ms",
            peer.latency_ms,
            ours.latency_ms,
            f"<= {1 / MIN_THROUGHPUT_RATIO:.2f}x",
            lambda ratio, _: ratio <= 1 / MIN_THROUGHPUT_RATIO,
        ),
        throughput("single-stream throughput", peer.single_tps, ours.single_tps),
    ]
    for n in sorted(peer.aggregate_tps):
        rows.append(
            throughput(f"aggregate, {n} streams", peer.aggregate_tps[n], ours.aggregate_tps[n])
        )
        rows.append(
            _row(
                f"max time to first token, {n} streams",
                "ms",
                peer.ttft_max_ms[n],
                ours.ttft_max_ms[n],
                "",
                lambda *_: True,
            )
        )
    rows.append(
        _row(
            f"max time to first token, bursts of {BURST}",
            "ms",
            peer.burst_ttft_max_ms,
            ours.burst_ttft_max_ms,
            f"<= {MAX_TTFT_MAX_RATIO:g}x",
            lambda ratio, _: ratio <= MAX_TTFT_MAX_RATIO,
        )
    )
    same = sum(a == b for a, b in zip(peer.texts, ours.texts, strict=True))
    cpu = {
        name: {
            "cpu_s": side.cpu_s,
            "tokens": side.tokens,
            "cpu_ms_per_token": 1000 * side.cpu_s / max(side.tokens, 1),
        }
        for name, side in (("peer", peer), ("ours", ours))
    }
    return {
        "metrics": rows,
        "same_output": {"matching": same, "total": len(peer.texts)},
        "short_streams": {"peer": peer.short_streams, "ours": ours.short_streams},
        "bursts_split": {"peer": peer.bursts_split, "ours": ours.bursts_split},
        "cpu": cpu,
        "all_targets_met": all(row["met"] for row in rows),
        "samples": {name: _samples(side) for name, side in (("peer", peer), ("ours", ours))},
    }


def _samples(side: SideResult) -> dict[str, Any]:
    """Every measurement, in the order taken (sample i of each side make a pair)."""
    return {
        "ttft_ms": side.ttft_ms,
        "latency_ms": side.latency_ms,
        "single_tps": side.single_tps,
        "aggregate_tps": {str(n): rates for n, rates in side.aggregate_tps.items()},
        "ttft_max_ms": {str(n): values for n, values in side.ttft_max_ms.items()},
        "burst_ttft_max_ms": side.burst_ttft_max_ms,
    }


def print_table(summary: dict[str, Any], header: str) -> None:
    print(header)
    print()
    labels = [f"{row['metric']} ({row['unit']})" for row in summary["metrics"]]
    width = max(len(label) for label in labels)
    cols = (
        f"{'metric':<{width}} {'peer':>9} {'ours':>9} {'ours/peer':>9} {'pairs p25-p75':>13} "
        f"{'added':>10}"
    )
    print(f"{cols}  {'target':<12} met")
    print("-" * (len(cols) + 18))
    for label, row in zip(labels, summary["metrics"], strict=True):
        added = f"{row['added_ms']:+.2f} ms" if row["added_ms"] is not None else ""
        middle = "{:.3f}-{:.3f}".format(*row["ratio_middle_half"])
        met = ("yes" if row["met"] else "NO") if row["target"] else ""
        print(
            f"{label:<{width}} {row['peer']:>9.2f} {row['ours']:>9.2f} "
            f"{row['ratio']:>9.3f} {middle:>13} {added:>10}  {row['target']:<12} {met}"
        )
    same = summary["same_output"]
    short = summary["short_streams"]
    print()
    print(
        f"identical {LATENCY_TOKENS}-token outputs: {same['matching']}/{same['total']}; "
        f"streams that ended before max_tokens: peer {short['peer']}, ours {short['ours']}"
    )
    split, bursts = summary["bursts_split"], summary["config"]["bursts"]
    print(
        f"bursts whose first tokens came in two waves (llama.cpp began some prompts a decode "
        f"step before the others): peer {split['peer']}/{bursts}, ours {split['ours']}/{bursts}"
    )
    cpu = summary["cpu"]
    print(
        f"server CPU per generated token: peer {cpu['peer']['cpu_ms_per_token']:.2f} ms, "
        f"ours {cpu['ours']['cpu_ms_per_token']:.2f} ms "
        f"({cpu['peer']['tokens']} and {cpu['ours']['tokens']} tokens)"
    )
    print(f"all targets met: {'yes' if summary['all_targets_met'] else 'NO'}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs", type=int, default=20, help="pairs of requests per latency metric (default 20)"
    )
    parser.add_argument(
        "--stream-runs", type=int, default=6, help="pairs of single streams (default 6)"
    )
    parser.add_argument(
        "--rounds", type=int, default=6, help="pairs of rounds per concurrency level (default 6)"
    )
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[4, 16],
        help="concurrent stream counts, comma-separated (default 4,16)",
    )
    # 60, not 20: llama.cpp either batches a burst's four prompts or begins one alone, so a
    # burst's largest time to first token is one of two values ~15 ms apart on either server,
    # and the median ratio of 20 pairs of the same two servers scattered from 0.94x to 1.24x.
    parser.add_argument(
        "--bursts", type=int, default=60, help=f"pairs of bursts of {BURST} streams (default 60)"
    )
    parser.add_argument("--ttft-tokens", type=int, default=8, help="max_tokens of TTFT requests")
    parser.add_argument("--stream-tokens", type=int, default=192, help="single-stream max_tokens")
    parser.add_argument(
        "--concurrent-tokens", type=int, default=64, help="max_tokens of each concurrent stream"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--timeout",
        type=float,
        default=900,
        help="end the run (and the server) if it takes longer than this many seconds",
    )
    parser.add_argument(
        "--gap",
        type=float,
        default=0.3,
        help="seconds of rest before each measurement, so the previous one's threads (the "
        "peer's spin a while after their work) are asleep when it starts (default 0.3)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="the engine's compute threads on both servers (default 0: every core, as the "
        "server's default; fewer leaves cores to the HTTP side)",
    )
    parser.add_argument(
        "--peer-vs-peer",
        action="store_true",
        help="a second llama.cpp server in our place: how far two runs of the same server "
        "differ on this machine",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object instead")
    parser.add_argument("--serve-peer", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--verbose", action="store_true", help="progress on stderr with --json too")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_peer:
        serve_peer(args.serve_peer, args.threads)
        return 0
    path = model_path()
    # The server's defaults: slots, context, threads, cache.
    cfg = ModelConfig(id="bench", threads=args.threads)
    threads = cfg.threads or os.cpu_count() or 1
    load = os.getloadavg()[0]
    began = time.perf_counter()
    start_watchdog(args.timeout)

    pairing = run_both(args)
    summary = report(pairing.results["peer"], pairing.results["ours"])
    summary["config"] = {
        "model": path,
        "n_parallel": cfg.n_parallel,
        "n_ctx": cfg.n_ctx,
        "threads": threads,
        "cache_ram_mib": cfg.cache_ram_mib,
        "cpu_count": os.cpu_count(),
        "load_avg_before": load,
        "runs": args.runs,
        "stream_runs": args.stream_runs,
        "rounds": args.rounds,
        "stream_tokens": args.stream_tokens,
        "concurrent_tokens": args.concurrent_tokens,
        "ttft_tokens": args.ttft_tokens,
        "bursts": args.bursts,
        "gap_s": args.gap,
        "peer_vs_peer": args.peer_vs_peer,
        "seconds": time.perf_counter() - began,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        c = summary["config"]
        print_table(
            summary,
            f"{Path(path).name}: n_parallel={c['n_parallel']} n_ctx={c['n_ctx']} "
            f"threads={c['threads']} cache_ram_mib={c['cache_ram_mib']}; "
            f"{c['cpu_count']} CPUs, load {load:.2f} before; "
            f"pairs: runs={c['runs']} stream_runs={c['stream_runs']} rounds={c['rounds']} "
            f"bursts={c['bursts']}; "
            f"{'ours replaced by a second llama.cpp server; ' if args.peer_vs_peer else ''}"
            f"{c['seconds']:.0f} s",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
