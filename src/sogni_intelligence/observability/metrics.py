"""The server's Prometheus metrics, on a registry of their own.

A dedicated registry (not prometheus_client's global one) keeps the exposition to our own
families and lets tests read exact values. Counters and histograms move where the work
happens; the gauges read from the database are set by a refresh right before each scrape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

REGISTRY = CollectorRegistry(auto_describe=True)
#: The Prometheus text format's media type, for the responses that carry `scrape()`.
CONTENT_TYPE = CONTENT_TYPE_LATEST

#: Seconds: from a quick JSON answer to a long completion or media job.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_RATE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
_JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

#: The route label of a request no route matched (raw paths would make a series per id).
UNMATCHED = "unmatched"

HTTP_REQUESTS = Counter(
    "sogni_http_requests",
    "HTTP responses, counted when they start, by route template, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "sogni_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response (a stream's end).",
    ["route", "method", "status"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
LLM_REQUESTS = Counter(
    "sogni_llm_requests",
    "Generations asked of an engine, by model and outcome (ok, error, cancelled).",
    ["model", "outcome"],
    registry=REGISTRY,
)
LLM_PROMPT_TOKENS = Counter(
    "sogni_llm_prompt_tokens",
    "Prompt tokens the engines reported, by model.",
    ["model"],
    registry=REGISTRY,
)
LLM_COMPLETION_TOKENS = Counter(
    "sogni_llm_completion_tokens",
    "Completion tokens the engines reported, by model.",
    ["model"],
    registry=REGISTRY,
)
LLM_TTFT = Histogram(
    "sogni_llm_time_to_first_token_seconds",
    "Time from asking an engine to its first generated text or tool-call token.",
    ["model"],
    buckets=_TTFT_BUCKETS,
    registry=REGISTRY,
)
LLM_TOKENS_PER_SECOND = Histogram(
    "sogni_llm_tokens_per_second",
    "Decoding speed of one generation: completion tokens after the first, per second.",
    ["model"],
    buckets=_RATE_BUCKETS,
    registry=REGISTRY,
)
LLM_SLOTS_BUSY = Gauge(
    "sogni_llm_slots_busy",
    "Generations in flight on a model's engines, by engine kind (embedded, upstream).",
    ["model", "engine"],
    registry=REGISTRY,
)
LLM_SLOTS_TOTAL = Gauge(
    "sogni_llm_slots_total",
    "Parallel generation slots of a model's embedded engine (n_parallel).",
    ["model"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "sogni_queue_depth",
    "Jobs waiting in a durable queue (enqueued, not yet started), read at scrape time.",
    ["queue"],
    registry=REGISTRY,
)
JOB_DURATION = Histogram(
    "sogni_job_duration_seconds",
    "Run time of a media/tool job (a workflow step), by queue and tool.",
    ["queue", "tool"],
    buckets=_JOB_BUCKETS,
    registry=REGISTRY,
)
RECORDS = Gauge(
    "sogni_records",
    "Durable records (workflows, chat runs) in the database, by kind and status, read at "
    "scrape time.",
    ["kind", "status"],
    registry=REGISTRY,
)
SSE_SUBSCRIBERS = Gauge(
    "sogni_sse_subscribers",
    "Event streams of durable records that clients are following now.",
    registry=REGISTRY,
)
FETCH_REFUSALS = Counter(
    "sogni_media_fetch_refusals",
    "Media URLs that were refused or could not be fetched, by reason (the error code).",
    ["reason"],
    registry=REGISTRY,
)

#: Sets the gauges read from the database; awaited right before a scrape renders.
Refresh = Callable[[], Awaitable[None]]


def replace(gauge: Gauge, values: Mapping[tuple[str, ...], float]) -> None:
    """Make `values` the gauge's only series: label sets that are gone stop being exported."""
    gauge.clear()
    for labels, value in values.items():
        gauge.labels(*labels).set(value)


async def scrape(refresh: Refresh | None) -> bytes:
    """The exposition text, with the database-derived gauges read just now."""
    if refresh is not None:
        await refresh()
    return generate_latest(REGISTRY)
