"""Benchmark: one chat-completions turn with one cheap hosted tool, against the same LLM calls
and the same tool call made directly, in one process and one run.

* ours: `POST /v1/chat/completions` through the in-process ASGI app (httpx), the tool forced by
  name. The agent loop runs the forced round, then the tool (a media tool as a one-step
  durable workflow it waits for), then, unless the tool ends the turn, the closing round in
  words (`agent_max_rounds=2`);
* direct: the same engine requests through `entry.engine.stream` (the forced round with the
  surface's tools, then the closing round with the call and its result appended as the loop
  appends them, `turn_messages`) and the tool through `execute(CATALOG[tool], args, ctx)`.

The default tool is `generate_image` at 256x256 (the prompt asks for that size; the model
writes the arguments). Both sides use greedy sampling and the same prompt and max_tokens, and
alternate which goes first. The table gives p50 of each side, the ratio ours/direct and the
milliseconds the loop adds; token counts show both sides generated the same. A second table
times the same call alone, without the LLM: `AgentLoop.run_calls` against `execute`.

    .venv/bin/python benchmarks/bench_agent.py [--runs 5] [--tool-runs 10] [--tool generate_image]
        [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from sogni_intelligence.agent.loop import RoundOutput, Session, turn_messages
from sogni_intelligence.agent.surfaces import hosted_tools
from sogni_intelligence.api.app import create_app
from sogni_intelligence.api.chat_completions.protocol import ChatCompletionRequest
from sogni_intelligence.config import PUBLIC_MODEL_IDS, ModelConfig, Settings
from sogni_intelligence.llm.protocol import merge_tool_call
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.keys import KeyStore
from sogni_intelligence.tools.agent_tools import LOOP_ENDING
from sogni_intelligence.tools.base import ToolContext, execute
from sogni_intelligence.tools.catalog import CATALOG
from sogni_intelligence.tools.media_context import MediaContext

PROMPTS = {
    "generate_image": "Make a picture of a red fox, 256 by 256 pixels.",
    "finalize_response": "Say that the picture is done.",
}
SURFACE = {"generate_image": "creative-tools", "finalize_response": "creative-agent"}


def _body(tool: str, max_tokens: int) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": PROMPTS[tool]}],
        "temperature": 0,
        "seed": 1,
        "max_tokens": max_tokens,
        "sogni_tools": SURFACE[tool],
        "tool_choice": {"type": "function", "function": {"name": tool}},
    }


async def _stream(engine: Any, request: dict[str, Any]) -> tuple[dict[int, dict], dict]:
    calls: dict[int, dict[str, Any]] = {}
    usage: dict[str, Any] = {}
    async for chunk in engine.stream(request):
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            for fragment in (choice.get("delta") or {}).get("tool_calls") or []:
                merge_tool_call(calls, fragment)
    return calls, usage


class Bench:
    def __init__(self, app: Any, client: httpx.AsyncClient, key: str, owner: str, tool: str):
        self.app = app
        self.client = client
        self.auth = {"Authorization": f"Bearer {key}"}
        self.owner = owner
        self.tool = tool

    async def ours(self, body: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        response = await self.client.post("/v1/chat/completions", json=body, headers=self.auth)
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        reply = response.json()
        [result] = reply["sogni_tool_results"]
        if not result["ok"]:
            raise RuntimeError(f"the tool failed: {result}")
        return {"s": elapsed, "usage": reply["usage"]}

    async def direct(self, body: dict[str, Any]) -> dict[str, Any]:
        """The loop's engine requests, built the way it builds them, and the tool call."""
        service = self.app.state.server.chat
        prepared = await service.prepare(ChatCompletionRequest.model_validate(body))
        base = prepared.engine_request
        tools = [tool.definition() for tool in prepared.hosted.values()]
        forced = {**base, "tools": tools, "tool_choice": prepared.tool_choice}
        engine = prepared.entry.engine
        started = time.perf_counter()
        calls, usage = await _stream(engine, forced)
        [call] = calls.values()
        llm = time.perf_counter() - started
        tool_started = time.perf_counter()
        ctx = ToolContext(
            self.owner,
            MediaContext(),
            self.app.state.server.assets,
            services=self.app.state.server.tool_services,
        )
        result = await execute(CATALOG[self.tool], json.loads(call["function"]["arguments"]), ctx)
        tool_s = time.perf_counter() - tool_started
        if not result["ok"]:
            raise RuntimeError(f"the tool failed: {result}")
        total = {k: int(usage.get(k) or 0) for k in ("prompt_tokens", "completion_tokens")}
        if self.tool not in LOOP_ENDING:
            closing_started = time.perf_counter()
            # The call and its result as the loop appends them (compacted for the model).
            added = turn_messages(RoundOutput(None, [call], "tool_calls"), [call], [result])
            messages = [*base["messages"], *added]
            _, closing = await _stream(engine, {**base, "messages": messages})
            llm += time.perf_counter() - closing_started
            for key in total:
                total[key] += int(closing.get(key) or 0)
        elapsed = time.perf_counter() - started
        return {
            "s": elapsed,
            "llm_s": llm,
            "tool_s": tool_s,
            "usage": total,
            "arguments": call["function"]["arguments"],
        }

    async def tool_path(self, arguments: str, number: int) -> dict[str, float]:
        """The same call without the LLM: through the loop's tool path, then directly."""
        agent = self.app.state.server.chat.agent
        surface = hosted_tools(SURFACE[self.tool], set())
        engine = self.app.state.server.chat.registry.resolve(None).engine  # not used: no round
        session = Session(self.owner, engine, {"messages": []}, [], surface, "auto", MediaContext())
        call = {
            "id": f"call_bench{number}",
            "type": "function",
            "function": {"name": self.tool, "arguments": arguments},
        }
        ctx = ToolContext(
            self.owner,
            MediaContext(),
            self.app.state.server.assets,
            services=self.app.state.server.tool_services,
        )
        timed: dict[str, float] = {}
        sides = [("loop_s", agent.run_calls(session, [call], 0))]
        sides.append(("direct_s", execute(CATALOG[self.tool], json.loads(arguments), ctx)))
        for name, work in sides if number % 2 == 0 else sides[::-1]:
            started = time.perf_counter()
            outcome = await work
            timed[name] = time.perf_counter() - started
            result = outcome[0] if isinstance(outcome, list) else outcome
            if not result["ok"]:
                raise RuntimeError(f"the tool failed: {result}")
        return timed


def _p50_ms(samples: list[dict[str, Any]], key: str = "s") -> float:
    return statistics.median(s[key] for s in samples) * 1000


def _tokens(samples: list[dict[str, Any]]) -> str:
    prompt = statistics.median(s["usage"]["prompt_tokens"] for s in samples)
    completion = statistics.median(s["usage"]["completion_tokens"] for s in samples)
    return f"{prompt:.0f}/{completion:.0f}"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        model = ModelConfig(
            id="smollm2-135m-instruct", aliases=list(PUBLIC_MODEL_IDS), n_parallel=1, n_ctx=8192
        )
        settings = Settings(data_dir=Path(tmp), models=[model], agent_max_rounds=2)
        db = Database(settings.resolved_database_url)
        await db.create_all()
        key, info = await KeyStore(db).create("bench")
        await db.close()
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=600
            ) as client:
                bench = Bench(app, client, key, info.id, args.tool)
                body = _body(args.tool, args.max_tokens)
                await bench.ours(body)  # warm-up: model, DBOS, database, caches
                arguments = (await bench.direct(body))["arguments"]
                ours, direct = [], []
                for i in range(args.runs):
                    if i % 2 == 0:
                        ours.append(await bench.ours(body))
                        direct.append(await bench.direct(body))
                    else:
                        direct.append(await bench.direct(body))
                        ours.append(await bench.ours(body))
                paths = [await bench.tool_path(arguments, i) for i in range(args.tool_runs)]
    ours_ms, direct_ms = _p50_ms(ours), _p50_ms(direct)
    loop_tool_ms, direct_tool_ms = _p50_ms(paths, "loop_s"), _p50_ms(paths, "direct_s")
    return {
        "tool": args.tool,
        "runs": args.runs,
        "max_tokens": args.max_tokens,
        "ours_p50_ms": ours_ms,
        "direct_p50_ms": direct_ms,
        "direct_llm_p50_ms": _p50_ms(direct, "llm_s"),
        "direct_tool_p50_ms": _p50_ms(direct, "tool_s"),
        "ratio": ours_ms / direct_ms,
        "added_ms": ours_ms - direct_ms,
        "tokens_ours": _tokens(ours),
        "tokens_direct": _tokens(direct),
        "tool_path": {
            "runs": args.tool_runs,
            "arguments": json.loads(arguments),
            "loop_p50_ms": loop_tool_ms,
            "direct_p50_ms": direct_tool_ms,
            "ratio": loop_tool_ms / direct_tool_ms,
            "added_ms": loop_tool_ms - direct_tool_ms,
        },
        "samples": {"ours": ours, "direct": direct, "tool_path": paths},
    }


def _table(r: dict[str, Any]) -> str:
    t = r["tool_path"]
    rows = [
        (f"turn forcing {r['tool']} ({r['runs']} runs, p50)", ""),
        ("  ours: HTTP + agent loop (+ durable workflow)", f"{r['ours_p50_ms']:.0f} ms"),
        ("  direct: engine calls + tool call", f"{r['direct_p50_ms']:.0f} ms"),
        ("    of which LLM", f"{r['direct_llm_p50_ms']:.0f} ms"),
        ("    of which tool", f"{r['direct_tool_p50_ms']:.1f} ms"),
        ("  ratio ours / direct", f"{r['ratio']:.2f}x"),
        ("  added by the loop", f"{r['added_ms']:.0f} ms"),
        ("  tokens prompt/completion, ours | direct", f"{r['tokens_ours']} | {r['tokens_direct']}"),
        (f"the same call without the LLM ({t['runs']} runs, p50)", ""),
        ("  ours: AgentLoop.run_calls", f"{t['loop_p50_ms']:.1f} ms"),
        ("  direct: execute(CATALOG[tool], args, ctx)", f"{t['direct_p50_ms']:.1f} ms"),
        ("  ratio ours / direct", f"{t['ratio']:.2f}x"),
        ("  added by the loop's tool path", f"{t['added_ms']:.1f} ms"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}".rstrip() for name, value in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed turns per side")
    parser.add_argument(
        "--tool",
        choices=sorted(PROMPTS),
        default="generate_image",
        help="generate_image (a media tool: workflow + closing round) or finalize_response "
        "(an inline tool that ends the turn: one round)",
    )
    parser.add_argument("--max-tokens", type=int, default=120, help="per LLM round")
    parser.add_argument(
        "--tool-runs", type=int, default=10, help="timed calls of the tool path alone"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    print(json.dumps(results, indent=2) if args.json else _table(results))


if __name__ == "__main__":
    main()
