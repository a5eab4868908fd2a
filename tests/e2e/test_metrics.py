"""Metrics and logs of the real server process: `/metrics` on a port of its own (no key, and
not on the API port), the LLM families moving with real completions of the real model, a
queued job in the queue depth and then in a worker's own metrics, and one JSON log line per
request carrying the client's request id.

The API process runs no media queue (`--no-worker`), so a workflow's step waits in the image
queue until a worker takes it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import RunningServer, free_port, running_server, start_workflow

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m-instruct"  # the configured id every alias of it is counted under
HELLO = [{"role": "user", "content": "Say hello to the lighthouse keeper."}]
#: One LLM request per completion: no hosted tools, so no agent rounds.
PLAIN = {"messages": HELLO, "max_tokens": 12, "sogni_tools": "none"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str]]:
    port = free_port()
    settings = {
        "SOGNI_METRICS_PORT": str(port),
        "SOGNI_LOG_FORMAT": "json",
        "SOGNI_LOG_LEVEL": "info",
    }
    data = tmp_path_factory.mktemp("metrics")
    with running_server(data, "--no-worker", settings=settings) as server:
        yield server, f"http://127.0.0.1:{port}/metrics"


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def until(scraped: Callable[[], Samples], holds: Callable[[Samples], bool]) -> Samples:
    """Scrape until `holds` (the work behind it runs in the background), at most a minute."""
    deadline = time.monotonic() + 60
    while not holds(samples := scraped()):
        assert time.monotonic() < deadline, "the metrics never showed it"
        time.sleep(0.2)
    return samples


def test_metrics_are_served_on_their_own_port_only(served: tuple[RunningServer, str]) -> None:
    server, url = served
    samples = scrape(url)  # no key needed there
    assert sample(samples, "sogni_llm_slots_total", model=MODEL) == 2  # n_parallel
    on_api = httpx.get(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {server.key}"}, timeout=10
    )
    assert on_api.status_code == 404


def test_completions_move_the_llm_families(served: tuple[RunningServer, str]) -> None:
    server, url = served
    headers = {"Authorization": f"Bearer {server.key}", "X-Request-Id": "e2e-plain"}
    before = scrape(url)
    plain = httpx.post(
        f"{server.url}/v1/chat/completions",
        json={**PLAIN, "temperature": 0},
        headers=headers,
        timeout=60,
    )
    assert plain.status_code == 200 and plain.headers["x-request-id"] == "e2e-plain"
    usage = plain.json()["usage"]
    with httpx.stream(
        "POST",
        f"{server.url}/v1/chat/completions",
        json={**PLAIN, "stream": True},
        headers={**headers, "X-Request-Id": "e2e-stream"},
        timeout=60,
    ) as streamed:
        assert streamed.headers["x-request-id"] == "e2e-stream"
        assert "data: [DONE]" in streamed.read().decode()
    after = scrape(url)

    def moved(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert moved("sogni_llm_requests_total", model=MODEL, outcome="ok") == 2
    assert moved("sogni_llm_prompt_tokens_total", model=MODEL) >= usage["prompt_tokens"] + 1
    assert moved("sogni_llm_completion_tokens_total", model=MODEL) >= usage["completion_tokens"] + 1
    assert moved("sogni_llm_time_to_first_token_seconds_count", model=MODEL) == 2
    assert moved("sogni_llm_time_to_first_token_seconds_sum", model=MODEL) > 0
    assert moved("sogni_llm_tokens_per_second_count", model=MODEL) >= 1
    assert sample(after, "sogni_llm_slots_busy", model=MODEL, engine="embedded") == 0
    route = {"route": "/v1/chat/completions", "method": "POST", "status": "200"}
    assert moved("sogni_http_requests_total", **route) == 2
    assert moved("sogni_http_request_duration_seconds_count", **route) == 2


def test_each_request_is_one_json_log_line(served: tuple[RunningServer, str]) -> None:
    server, _ = served
    response = httpx.get(
        f"{server.url}/v1/models",
        headers={"Authorization": f"Bearer {server.key}", "X-Request-Id": "e2e-log"},
        timeout=10,
    )
    assert response.status_code == 200
    lines = _json_lines(server.log, "e2e-log")
    assert len(lines) == 1, lines
    line = lines[0]
    assert line["logger"] == "sogni_intelligence.http" and line["route"] == "/v1/models"
    assert line["status"] == 200 and line["method"] == "GET" and line["key_id"].startswith("key_")
    assert line["duration_ms"] >= 0


IMAGE_JOB = {"queue": "image", "tool": "generate_image"}
PLAN = {
    "title": "One image",
    "steps": [
        {
            "id": "poster",
            "toolName": "generate_image",
            "arguments": {"prompt": "a lighthouse at dusk", "width": 256, "height": 256},
        }
    ],
}


def test_a_queued_job_shows_in_the_depth_and_in_its_workers_metrics(
    served: tuple[RunningServer, str], tmp_path: Path
) -> None:
    server, url = served
    start_workflow(server, PLAN)
    until(lambda: scrape(url), lambda s: sample(s, "sogni_queue_depth", queue="image") == 1)
    worker_port = free_port()
    worker_url = f"http://127.0.0.1:{worker_port}/metrics"
    env = {**server.env, "SOGNI_METRICS_PORT": str(worker_port)}
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "sogni_intelligence.cli.main", "worker", "--queues", "image"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def from_worker() -> Samples:
        assert worker.poll() is None, log.read_text()
        try:
            return scrape(worker_url)
        except httpx.ConnectError:  # still starting
            return {}

    try:
        ran = until(
            from_worker, lambda s: sample(s, "sogni_job_duration_seconds_count", **IMAGE_JOB) >= 1
        )
        assert sample(ran, "sogni_job_duration_seconds_sum", **IMAGE_JOB) > 0
        until(lambda: scrape(url), lambda s: sample(s, "sogni_queue_depth", queue="image") == 0)
    finally:
        worker.terminate()
        worker.wait(20)


def _json_lines(log: Path, request_id: str) -> list[dict]:
    """The log's request lines of one request (written just after the answer has gone)."""
    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(text) for text in log.read_text().splitlines() if text.startswith("{")]
        found = [line for line in lines if line.get("request_id") == request_id and "route" in line]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)
