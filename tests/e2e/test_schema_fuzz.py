"""Schema fuzzing of the real server: schemathesis reads its OpenAPI document and, for a bounded
time, sends what it generates from it (valid and invalid requests, every parameter's edge cases,
then chains of calls); any 5xx or broken connection fails the test.

`SOGNI_FUZZ_SECONDS` sets the time (60 by default); a longer run goes deeper.

Path ids come from records made before the run, so the `{id}` routes reach their handlers
instead of only answering 404. Chat completions and chat runs ask the model for a few tokens,
so that thousands of cases fit in the time."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import schemathesis
from PIL import Image
from schemathesis.engine import events, from_schema
from schemathesis.hooks import GLOBAL_HOOK_DISPATCHER

from tests.e2e.conftest import RunningServer, running_server

FUZZ_SECONDS = int(os.environ.get("SOGNI_FUZZ_SECONDS", "60"))
#: Well under what a minute gives on two cores, and far above a run that failed to start.
MIN_CASES = 500
FEW_TOKENS = 8
WORKFLOWS = "/v1/creative-agent/workflows"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(FUZZ_SECONDS + 240)]

PLAN = {
    "title": "One image",
    "steps": [
        {"id": "a", "toolName": "generate_image", "arguments": {"prompt": "a red cube"}},
    ],
}
TEMPLATE = {
    "name": "Poster",
    "visibility": "public",
    "inputs": [{"name": "subject", "type": "text", "required": True}],
    "stages": [
        {
            "type": "fixed",
            "id": "art",
            "tool": "generate_image",
            "args": {"prompt": "poster of $inputs.subject"},
        }
    ],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """An API process (media jobs queue, no worker renders them) whose agent turns are short."""
    settings = {
        "SOGNI_WORKER_QUEUES": "[]",
        "SOGNI_AGENT_MAX_ROUNDS": "2",
        "SOGNI_AGENT_MAX_TOKENS_PER_ROUND": str(FEW_TOKENS),
        "SOGNI_AGENT_WORKFLOW_WAIT_S": "0",
    }
    with running_server(tmp_path_factory.mktemp("fuzz"), settings=settings) as running:
        yield running


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201, 202), response.text
    return response.json()["data"]


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), "teal").save(out, "PNG")
    return out.getvalue()


def _records(server: RunningServer) -> dict[str, list[str]]:
    """Ids of real records for each path parameter: a template, a queued and a cancelled
    workflow, a finished chat run and an asset."""
    auth = {"Authorization": f"Bearer {server.key}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=120) as http:
        template = _created(http.post(f"{WORKFLOWS}/templates", json=TEMPLATE))["template"]["id"]
        workflows = [
            _created(http.post(WORKFLOWS, json={"input": PLAN}))["workflow"]["workflowId"]
            for _ in range(2)
        ]
        _created(http.post(f"{WORKFLOWS}/{workflows[1]}/cancel", json={}))
        run = {
            "messages": [{"role": "user", "content": "Say hi."}],
            "sogni_tools": "none",
            "sampling": {"max_tokens": FEW_TOKENS},
        }
        run_id = _created(http.post("/v1/chat/runs", json=run))["run"]["runId"]
        asset = _created(http.post("/v1/media", content=_png()))["asset"]["asset_id"]
    return {
        "template_id": [template],
        "workflow_id": workflows,
        "run_id": [run_id],
        "asset_id": [asset],
    }


def _config(key: str, records: dict[str, list[str]]) -> schemathesis.Config:
    """Only the server-error check; path ids drawn from the real records most of the time;
    nothing written to disk (no example database, no cache)."""
    return schemathesis.Config.from_dict(
        {
            "headers": {"Authorization": f"Bearer {key}"},
            "checks": {"enabled": False, "not_a_server_error": {"enabled": True}},
            "max-time": FUZZ_SECONDS,
            # One worker: several make Hypothesis parse lambdas on threads at once, which
            # Python 3.11's AST module does not survive.
            "workers": 1,
            "request-timeout": 60,
            "generation": {"database": "none"},
            "cache": {"enabled": False},
            "warnings": False,
            "dictionaries": {name: {"values": ids} for name, ids in records.items()},
            "parameters": {
                f"path.{name}": {"dictionary": name, "probability": 0.9} for name in records
            },
        }
    )


def _few(value: Any) -> Any:
    """`value`, unless it would let the model generate more than a few tokens."""
    unbounded = value is None or (
        isinstance(value, int | float) and not isinstance(value, bool) and value > FEW_TOKENS
    )
    return FEW_TOKENS if unbounded else value


def _bound_tokens(fields: dict[str, Any], names: tuple[str, ...]) -> None:
    """Each limit given (in any spelling) bounded, and one set when none is."""
    given = [name for name in names if name in fields]
    for name in given or names[:1]:
        fields[name] = _few(fields.get(name))


def _short_generations(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """A `before_call` hook: requests that would run the model ask for a few tokens."""
    body = case.body
    if not isinstance(body, dict):
        return
    if case.operation.path == "/v1/chat/completions":
        names = ("max_tokens", "maxTokens", "max_completion_tokens", "maxCompletionTokens")
        _bound_tokens(body, names)
    elif case.operation.path == "/v1/messages":
        _bound_tokens(body, ("max_tokens",))
    elif case.operation.path == "/v1/chat/runs":
        sampling = body.get("sampling")
        if sampling is None or isinstance(sampling, dict):
            body["sampling"] = dict(sampling or {})
            _bound_tokens(body["sampling"], ("max_tokens", "maxTokens"))


@contextmanager
def _while_fuzzing(hook: Any) -> Iterator[None]:
    """schemathesis calls `before_call` hooks from its global registry only; this one is there
    for the run alone."""
    schemathesis.hook("before_call")(hook)
    try:
        yield
    finally:
        GLOBAL_HOOK_DISPATCHER.unregister(hook)


class Tally:
    """Every response and broken call of a run (one worker: the hooks run one at a time)."""

    def __init__(self) -> None:
        self.cases = 0
        self.server_errors: list[str] = []
        self.network_errors: list[str] = []
        self.tried: set[str] = set()
        self.succeeded: set[str] = set()

    def watch(self, schema: Any) -> None:
        """Register the hooks that count the calls made from `schema`."""

        def after_call(context: Any, case: Any, response: Any) -> None:
            self.cases += 1
            self.tried.add(case.operation.label)
            if response.status_code < 300:
                self.succeeded.add(case.operation.label)
            if response.status_code >= 500:
                self.server_errors.append(
                    f"{response.status_code} {response.text[:300]}\n{case.as_curl_command()}"
                )

        def after_network_error(context: Any, case: Any, request: Any) -> None:
            self.cases += 1
            self.network_errors.append(case.as_curl_command())

        schema.hook("after_call")(after_call)
        schema.hook("after_network_error")(after_network_error)


def test_no_server_errors_under_schema_fuzzing(server: RunningServer) -> None:
    schema = schemathesis.openapi.from_url(
        f"{server.url}/openapi.json", config=_config(server.key, _records(server))
    )
    tally = Tally()
    tally.watch(schema)
    tool_errors: list[str] = []
    started = time.monotonic()
    with _while_fuzzing(_short_generations):
        for event in from_schema(schema).execute():
            if isinstance(event, events.FatalError):
                raise event.exception
            if isinstance(event, events.NonFatalError):  # schemathesis itself, not the server
                tool_errors.append(f"{event.label}: {str(event.value)[:300]}")
    seconds = time.monotonic() - started
    print(
        f"\nschema fuzz: {tally.cases} cases, {len(tally.server_errors)} server errors (5xx), "
        f"{len(tally.network_errors)} broken calls in {seconds:.0f} s "
        f"(seed {schema.config.seed}); schemathesis errors: {tool_errors or 'none'}; "
        f"never a 2xx: {sorted(tally.tried - tally.succeeded)}"
    )
    assert not tally.server_errors, "\n\n".join(dict.fromkeys(tally.server_errors))
    assert not tally.network_errors, "\n\n".join(tally.network_errors)
    assert tally.cases >= MIN_CASES
