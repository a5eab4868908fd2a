"""A process that serves the app (the real default model, DBOS) on a data directory and a
database, for the chat-run crash-recovery tests. It is meant to be killed.

    python chat_run_runner.py DATA_DIR DATABASE_URL start SCENARIO
        make a key, start the scenario's run, print {"run_id", "key"}, then run forever
        (the `tool` scenario confirms the cost pause itself, with BIG_IMAGES as overrides)
    python chat_run_runner.py DATA_DIR DATABASE_URL recover --key KEY --run-id ID [--confirm]
                                                              [--fault SEAM]
        build the app the same way (DBOS recovers the run as it launches), confirm a cost
        pause when asked to, wait for the terminal event, print a JSON summary, exit 0
        (2: timeout)

Every line on stdout is one JSON object; logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from dbos import DBOS

from sogni_intelligence.agent.loop import AgentLoop
from sogni_intelligence.api.app import create_app
from sogni_intelligence.config import PUBLIC_MODEL_IDS, ModelConfig, Settings
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.keys import KeyStore

BASE = "/v1/chat/runs"
TERMINAL_EVENTS = ("run_completed", "run_partial_failure", "run_failed", "run_cancelled")
# Each scenario is a run of two LLM rounds: a forced generate_image, then an answer in words.
SCENARIOS: dict[str, dict[str, Any]] = {
    # killed during the first LLM round
    "llm": {"runtime_config": None},
    # killed while the image job runs (confirmed with BIG_IMAGES to make it long)
    "tool": {"runtime_config": {"requireJobConfirmation": True}},
    # killed while the run waits for a cost confirmation
    "cost": {"runtime_config": {"requireJobConfirmation": True}},
}
BIG_IMAGES = {"width": 2048, "height": 2048, "numberOfVariations": 8}


def emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def settings_for(data_dir: Path, database_url: str) -> Settings:
    """The default model on one thread (shared cores make llama.cpp's spinning threads crawl),
    two LLM rounds per run."""
    model = ModelConfig(
        id="smollm2-135m-instruct",
        aliases=list(PUBLIC_MODEL_IDS),
        n_parallel=2,
        n_ctx=4096,
        threads=1,
    )
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        models=[model],
        key_cache_seconds=0,
        agent_max_rounds=2,
    )


def run_body(scenario: str) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": "Make a 256x256 picture of a red fox."}],
        "tool_choice": {"type": "function", "function": {"name": "generate_image"}},
        "sampling": {"temperature": 0, "max_tokens": 100},
        "runtime_config": SCENARIOS[scenario]["runtime_config"],
    }


async def _run(http: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    response = await http.get(f"{BASE}/{run_id}")
    response.raise_for_status()
    return response.json()["data"]["run"]


async def _confirm(
    http: httpx.AsyncClient, run_id: str, overrides: dict[str, Any] | None = None
) -> None:
    """Wait for the cost pause, then confirm the preview it shows."""
    while True:
        run = await _run(http, run_id)
        if run["status"] == "waiting_for_user":
            break
        if run["status"] not in ("queued", "running"):
            raise RuntimeError(f"the run ended {run['status']} before its cost pause")
        await asyncio.sleep(0.05)
    details = run["waiting"]["details"]
    body = {
        "tool_call_id": details["toolCallId"],
        "decision": "confirm",
        "acceptedCostPreview": details["costApprovalPreview"],
        "overrides": overrides,
    }
    response = await http.post(f"{BASE}/{run_id}/confirm-cost", json=body)
    response.raise_for_status()


async def start(data_dir: Path, database_url: str, scenario: str) -> None:
    settings = settings_for(data_dir, database_url)
    settings.ensure_data_dir()
    db = Database(settings.resolved_database_url)
    await db.create_all()
    key, _ = await KeyStore(db).create("crash")
    await db.close()
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://runner",
            headers={"Authorization": f"Bearer {key}"},
            timeout=120,
        ) as http,
    ):
        response = await http.post(BASE, json=run_body(scenario))
        response.raise_for_status()
        run_id = response.json()["data"]["run"]["runId"]
        emit({"run_id": run_id, "key": key})
        if scenario == "tool":
            await _confirm(http, run_id, BIG_IMAGES)
        await asyncio.Event().wait()  # until killed


async def _dbos_settled(workflow_id: str, timeout_s: float = 15) -> str | None:
    """DBOS's status of the run once it has left PENDING (the terminal event is written in
    the last step, a moment before DBOS records the result)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = await DBOS.get_workflow_status_async(workflow_id)
        if status is None or status.status != "PENDING" or time.monotonic() > deadline:
            return None if status is None else status.status
        await asyncio.sleep(0.02)


async def recover(
    data_dir: Path, database_url: str, key: str, run_id: str, confirm: bool, timeout_s: float
) -> int:
    # Which LLM rounds and tool batches this process runs (a finished one must not run again).
    rounds: list[int] = []
    batches: list[list[str]] = []
    round_of, run_calls = AgentLoop.round, AgentLoop.run_calls

    def counted_round(self: AgentLoop, session: Any, messages: Any, number: int) -> Any:
        rounds.append(number)
        return round_of(self, session, messages, number)

    async def counted_calls(self: AgentLoop, session: Any, calls: Any, *args: Any) -> Any:
        batches.append([c["id"] for c in calls])
        return await run_calls(self, session, calls, *args)

    AgentLoop.round = counted_round  # type: ignore[method-assign]
    AgentLoop.run_calls = counted_calls  # type: ignore[method-assign]

    app = create_app(settings_for(data_dir, database_url))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://runner",
            headers={"Authorization": f"Bearer {key}"},
            timeout=120,
        ) as http,
    ):
        status_at_launch = (await _run(http, run_id))["status"]
        try:
            async with asyncio.timeout(timeout_s):
                if confirm:
                    await _confirm(http, run_id)
                records = app.state.server.chat_runs.deps.records
                async for event in records.follow(run_id):
                    if event is not None and event.type in TERMINAL_EVENTS:
                        break
        except TimeoutError:
            emit({"error": "timeout", "run": await _run(http, run_id)})
            return 2
        run = await _run(http, run_id)
        emit(
            {
                "status": run["status"],
                "status_at_launch": status_at_launch,
                "dbos_status": await _dbos_settled(run_id),
                "rounds": rounds,
                "batches": batches,
                "childWorkflowIds": run["childWorkflowIds"],
                "billingPreviews": run["billingPreviews"],
                "recovery": run["recovery"],
            }
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("database_url")
    parser.add_argument("mode", choices=("start", "recover"))
    parser.add_argument("scenario", nargs="?", choices=tuple(SCENARIOS))
    parser.add_argument("--key", help="recover: the key that started the run")
    parser.add_argument("--run-id", help="recover: the run to wait for")
    parser.add_argument("--confirm", action="store_true", help="recover: confirm a cost pause")
    parser.add_argument("--timeout", type=float, default=120.0, help="recover: seconds to wait")
    parser.add_argument("--fault", help="recover: make this seam fail (see faults.py)")
    args = parser.parse_args()
    if args.mode == "start":
        asyncio.run(start(args.data_dir, args.database_url, args.scenario))
        return 0
    recovery = recover(
        args.data_dir, args.database_url, args.key, args.run_id, args.confirm, args.timeout
    )
    if args.fault:
        sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # run as a script
        from tests.integration.runtime.faults import injected

        with injected(args.fault):
            return asyncio.run(recovery)
    return asyncio.run(recovery)


if __name__ == "__main__":
    sys.exit(main())
