"""Evaluation: how often a model gets typical creative requests right through our agent loop.

Each case of `benchmarks/data/agent_eval.json` is one user request (with uploaded media made
here and attached as data URIs) sent as a real `POST /v1/chat/completions` to a server started
in this process. The response is scored by structure only: the right tool (or tools) ran and
succeeded, no call was rejected as invalid (a bad argument or an index that points at
nothing), the produced media has the asked type and size, and the turn ended with an answer of
bounded length, or with a question when the request was ambiguous, or without any tool for a
plain question. It prints one line per case, the success rate and, on its own line, the share
of hosted calls rejected as invalid.

    .venv/bin/python benchmarks/bench_agent_eval.py [--cases image,edit-upscale] [--json F]
    .venv/bin/python benchmarks/bench_agent_eval.py --gguf model.gguf [--chat-template T]
    .venv/bin/python benchmarks/bench_agent_eval.py --tool-choice required

The baseline is the same cases on the same server; compare a model or a prompt change with
the line of each run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import uvicorn
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from sogni_intelligence.api.app import create_app
from sogni_intelligence.config import PUBLIC_MODEL_IDS, ModelConfig, Settings
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.keys import KeyStore

CASES = Path(__file__).parent / "data" / "agent_eval.json"
#: Rejections that mean the model wrote a call that could not run here as written.
INVALID = frozenset({"PARAMETER_INVALID", "ASSET_NOT_FOUND"})
CLARIFY_TOOL = "ask_clarifying_question"


# --- the cases ---------------------------------------------------------------------------------


class Output(BaseModel):
    """Media the turn must produce: at least `count` of `type`, optionally of a size."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["image", "video", "audio"]
    count: int = Field(1, ge=1)
    width: int | None = None
    height: int | None = None
    min_width: int | None = None
    orientation: Literal["portrait", "landscape"] | None = None


class Expect(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tools_any: list[str] = Field(default_factory=list)
    tools_all: list[str] = Field(default_factory=list)
    no_tools: bool = False
    outputs: list[Output] = Field(default_factory=list)
    #: Words the arguments of the successful calls must contain (the request's subject, not
    #: the tool's description copied back).
    mentions: list[str] = Field(default_factory=list)
    answer: bool = False
    answer_max_chars: int = 2000
    clarify: bool = False


class Upload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["image", "video", "audio"]


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    category: str
    prompt: str
    expect: Expect
    media: list[Upload] = Field(default_factory=list)
    sogni_tools: str = "creative-tools"


def load_cases(path: Path = CASES) -> list[Case]:
    return [Case.model_validate(raw) for raw in json.loads(path.read_text())["cases"]]


# --- scoring (a pure function of the case and the response body) -------------------------------


@dataclass
class Score:
    passed: bool
    failure: str | None
    tools: list[str]
    calls: int
    invalid: int
    answer: str = ""
    details: list[str] = field(default_factory=list)


def score(case: Case, body: dict[str, Any]) -> Score:
    results = body.get("sogni_tool_results") or []
    tools = [f"{r.get('tool')}{'' if r.get('ok') else '!'}" for r in results]
    succeeded = {r.get("tool") for r in results if r.get("ok")}
    invalid = [r for r in results if not r.get("ok") and r.get("error_type") in INVALID]
    message = ((body.get("choices") or [{}])[0].get("message")) or {}
    answer = message.get("content") or ""
    assets = [a for r in results if r.get("ok") for a in r.get("output_assets") or []]
    failure = _first_failure(case.expect, succeeded, results, invalid, answer, assets)
    return Score(
        passed=failure is None,
        failure=failure,
        tools=tools,
        calls=len(results),
        invalid=len(invalid),
        answer=answer,
        details=[f"{r.get('tool')}: {r.get('message')}" for r in invalid],
    )


def _first_failure(
    expect: Expect,
    succeeded: set[str | None],
    results: list[dict[str, Any]],
    invalid: list[dict[str, Any]],
    answer: str,
    assets: list[dict[str, Any]],
) -> str | None:
    if invalid:
        return f"{len(invalid)} invalid call(s)"
    if expect.no_tools and results:
        return "called a tool for a plain question"
    if expect.tools_any and not succeeded & set(expect.tools_any):
        return f"none of {expect.tools_any} succeeded"
    missing = [t for t in expect.tools_all if t not in succeeded]
    if missing:
        return f"{missing} did not succeed"
    written = " ".join(
        json.dumps(r.get("arguments"), ensure_ascii=False).lower() for r in results if r.get("ok")
    )
    absent = [word for word in expect.mentions if word.lower() not in written]
    if absent:
        return f"the arguments do not mention {absent}"
    for wanted in expect.outputs:
        problem = _output_problem(wanted, assets)
        if problem:
            return problem
    if expect.clarify and CLARIFY_TOOL not in succeeded and "?" not in answer:
        return "asked no question"
    if expect.answer and not answer.strip():
        return "no answer"
    if len(answer) > expect.answer_max_chars:
        return f"answer of {len(answer)} characters"
    return None


def _output_problem(wanted: Output, assets: list[dict[str, Any]]) -> str | None:
    of_type = [a for a in assets if a.get("type") == wanted.type]
    fitting = [a for a in of_type if _fits(wanted, a)]
    if len(fitting) < wanted.count:
        sizes = [f"{a.get('width')}x{a.get('height')}" for a in of_type]
        return f"wanted {wanted.count} {wanted.type} as asked, got {len(fitting)} {sizes}"
    return None


def _fits(wanted: Output, asset: dict[str, Any]) -> bool:
    width, height = asset.get("width") or 0, asset.get("height") or 0
    if wanted.width is not None and width != wanted.width:
        return False
    if wanted.height is not None and height != wanted.height:
        return False
    if wanted.min_width is not None and width < wanted.min_width:
        return False
    if wanted.orientation == "portrait" and not height > width:
        return False
    return not (wanted.orientation == "landscape" and not width > height)


# --- media fixtures ------------------------------------------------------------------------------


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def fixtures(folder: Path) -> dict[str, list[str]]:
    """Two of each kind, real files that decode: a photo-like image, a clip with sound, a tone."""
    out: dict[str, list[str]] = {"image": [], "video": [], "audio": []}
    for i, colour in enumerate(((200, 80, 40), (40, 120, 200))):
        picture = Image.linear_gradient("L").resize((256, 256)).convert("RGB")
        tinted = Image.blend(picture, Image.new("RGB", picture.size, colour), 0.5)
        buffer = io.BytesIO()
        tinted.save(buffer, "PNG")
        out["image"].append(_data_uri("image/png", buffer.getvalue()))
        clip = folder / f"clip{i}.mp4"
        picture_source = f"testsrc=size=320x240:rate=24:duration={2 + i}"
        sound_source = f"sine=frequency={440 + 220 * i}:duration={2 + i}"
        encode = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(clip)]
        _ffmpeg(["-f", "lavfi", "-i", picture_source, "-f", "lavfi", "-i", sound_source, *encode])
        out["video"].append(_data_uri("video/mp4", clip.read_bytes()))
        tone = folder / f"tone{i}.wav"
        _ffmpeg(["-f", "lavfi", "-i", f"sine=frequency={330 + 110 * i}:duration=3", str(tone)])
        out["audio"].append(_data_uri("audio/wav", tone.read_bytes()))
    return out


def _ffmpeg(arguments: list[str]) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *arguments], check=True)


def request_body(
    case: Case, media: dict[str, list[str]], model: str, options: argparse.Namespace
) -> dict[str, Any]:
    taken = {"image": 0, "video": 0, "audio": 0}
    references = []
    for upload in case.media:
        references.append({"kind": upload.kind, "url": media[upload.kind][taken[upload.kind]]})
        taken[upload.kind] += 1
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": case.prompt}],
        "sogni_tools": case.sogni_tools,
        "max_tokens": options.max_tokens,
        "temperature": options.temperature,
        "seed": options.seed,
    }
    if options.tool_choice != "auto":
        body["tool_choice"] = options.tool_choice
    if references:
        body["media_references"] = references
    return body


# --- running -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    case: str
    category: str
    seconds: float
    score: Score
    tokens: int = 0


async def run_case(
    client: httpx.AsyncClient, case: Case, body: dict[str, Any], timeout_s: float
) -> Outcome:
    started = time.perf_counter()
    try:
        response = await client.post("/v1/chat/completions", json=body, timeout=timeout_s)
    except httpx.HTTPError as exc:
        failed = Score(False, f"no response: {exc!r}", [], 0, 0)
        return Outcome(case.id, case.category, time.perf_counter() - started, failed)
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        failed = Score(False, f"HTTP {response.status_code}: {response.text[:200]}", [], 0, 0)
        return Outcome(case.id, case.category, seconds, failed)
    reply = response.json()
    tokens = int((reply.get("usage") or {}).get("total_tokens") or 0)
    return Outcome(case.id, case.category, seconds, score(case, reply), tokens)


def _settings(data: Path, port: int, options: argparse.Namespace) -> tuple[Settings, str]:
    models = [ModelConfig(id="smollm2-135m-instruct", aliases=list(PUBLIC_MODEL_IDS))]
    model = options.model or models[0].id
    if options.gguf:
        models.append(
            ModelConfig(id="eval-gguf", path=options.gguf, chat_template=options.chat_template)
        )
        model = "eval-gguf"
    return Settings(data_dir=data, port=port, models=models), model


async def evaluate(options: argparse.Namespace, cases: list[Case]) -> list[Outcome]:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        media = fixtures(root)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        settings, model = _settings(root / "data", port, options)
        settings.ensure_data_dir()
        db = Database(settings.resolved_database_url)
        await db.create_all()
        key, _ = await KeyStore(db).create("eval")
        await db.close()
        server = uvicorn.Server(uvicorn.Config(create_app(settings), port=port, log_level="error"))
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        gate = asyncio.Semaphore(options.concurrency)
        headers = {"Authorization": f"Bearer {key}"}
        base = f"http://127.0.0.1:{port}"

        async def one(case: Case) -> Outcome:
            async with gate:
                outcome = await run_case(
                    client, case, request_body(case, media, model, options), options.timeout
                )
                _print_case(outcome)
                return outcome

        try:
            async with httpx.AsyncClient(base_url=base, headers=headers) as client:
                work = [case for case in cases for _ in range(options.repeat)]
                return list(await asyncio.gather(*(one(case) for case in work)))
        finally:
            server.should_exit = True
            await serving


def _print_case(outcome: Outcome) -> None:
    verdict = "PASS" if outcome.score.passed else "FAIL"
    tools = ",".join(outcome.score.tools) or "-"
    why = f"  ({outcome.score.failure})" if outcome.score.failure else ""
    print(f"{verdict} {outcome.case:<24} {outcome.seconds:6.1f}s  tools={tools}{why}", flush=True)
    for detail in outcome.score.details:
        print(f"     invalid: {detail}", flush=True)


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    passed = sum(o.score.passed for o in outcomes)
    calls = sum(o.score.calls for o in outcomes)
    invalid = sum(o.score.invalid for o in outcomes)
    categories: dict[str, list[bool]] = {}
    for outcome in outcomes:
        categories.setdefault(outcome.category, []).append(outcome.score.passed)
    return {
        "passed": passed,
        "cases": len(outcomes),
        "success_pct": 100 * passed / max(1, len(outcomes)),
        "calls": calls,
        "invalid_calls": invalid,
        "invalid_pct": 100 * invalid / max(1, calls),
        "median_s": statistics.median(o.seconds for o in outcomes) if outcomes else 0.0,
        "tokens": sum(o.tokens for o in outcomes),
        "by_category": {k: f"{sum(v)}/{len(v)}" for k, v in sorted(categories.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a model id the server serves (default: the default)")
    parser.add_argument("--gguf", help="serve this GGUF as an extra model and evaluate it")
    parser.add_argument("--chat-template", help="Jinja chat template for --gguf (text or path)")
    parser.add_argument("--cases", help="comma-separated case ids or categories")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--tool-choice",
        choices=["auto", "required"],
        default="auto",
        help="required: the first round must call a tool (what a grammar makes of a model's "
        "calls, even one that never calls on its own; the plain questions then fail)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per case")
    parser.add_argument("--json", type=Path, help="write every case's detail here")
    options = parser.parse_args()
    cases = load_cases()
    if options.cases:
        wanted = set(options.cases.split(","))
        cases = [c for c in cases if c.id in wanted or c.category in wanted]
    if not cases:
        sys.exit("no case matches --cases")
    outcomes = asyncio.run(evaluate(options, cases))
    totals = summary(outcomes)
    print(f"success: {totals['passed']}/{totals['cases']} ({totals['success_pct']:.1f} %)")
    print(
        f"invalid calls: {totals['invalid_pct']:.1f} % "
        f"({totals['invalid_calls']} of {totals['calls']})"
    )
    print(f"by category: {totals['by_category']}")
    print(f"median per case: {totals['median_s']:.1f} s; tokens: {totals['tokens']}")
    if options.json:
        detail = {"summary": totals, "cases": [asdict(o) for o in outcomes]}
        options.json.write_text(json.dumps(detail, indent=1))


if __name__ == "__main__":
    main()
