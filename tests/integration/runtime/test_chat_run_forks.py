"""Forks and replays of durable chat runs in-process with the real default model: a fork
continues another run's history from one of its events, with the media it had then; a replay
runs the original's later rounds again and reports the rounds that come out differently."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.integration.runtime.conftest import app_with_two_keys
from tests.integration.runtime.test_chat_runs_api import (
    BASE,
    IMAGE_RUN,
    Client,
    gap_free,
    plain,
    run_settings,
    types,
)

pytestmark = pytest.mark.slow


@pytest_asyncio.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    settings = run_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'sogni.sqlite'}")
    async with app_with_two_keys(settings, 120) as parts:
        yield Client(*parts)


def fork(run_id: str, after: int, *messages: str, **extra: Any) -> dict[str, Any]:
    return {
        "fork_from": {"run_id": run_id, "after_sequence": after},
        "messages": [{"role": "user", "content": text} for text in messages],
        **extra,
    }


async def _finished(client: Client, body: dict[str, Any]) -> tuple[str, list[dict]]:
    run_id = await client.started(body)
    frames, _ = await client.stream(run_id)
    gap_free(frames)
    assert frames[-1]["type"] in ("run_completed", "run_partial_failure"), types(frames)
    return run_id, frames


async def test_a_fork_after_a_tool_batch_keeps_its_history_and_media(client: Client) -> None:
    original, frames = await _finished(client, IMAGE_RUN)
    [resolved] = [f for f in frames if f["type"] == "tool_call_resolved"]
    images = resolved["payload"]["artifacts"]

    forked_id, forked = await _finished(client, fork(original, resolved["sequence"]))
    media = next(f for f in forked if f["type"] == "media_context_updated")["payload"]
    kept = media["mediaContext"]["images"]  # the same images at the same indices
    assert [f"/{image['id']}?" in url for image, url in zip(images, kept, strict=True)]
    run = await client.run(forked_id)
    assert run["request"]["forkFrom"] == {
        "runId": original,
        "afterSequence": resolved["sequence"],
    }
    # The original's call is history: the fork does not make it again (its first round is
    # free to call tools of its own, as the original's second round was).
    call_id = resolved["payload"]["toolCallId"]
    assert call_id not in [c["toolCallId"] for c in run["toolCalls"]]

    # Before the call was settled: the history is the request alone, without the image.
    started = next(f for f in frames if f["type"] == "tool_call_dispatched")["sequence"]
    early_id, early = await _finished(client, fork(original, started))
    early_media = next(f for f in early if f["type"] == "media_context_updated")["payload"]
    assert early_media["mediaContext"]["images"] == []
    assert (await client.run(early_id))["status"] in ("completed", "partial_failure")


async def test_a_fork_after_the_answer_needs_a_new_message(client: Client) -> None:
    original, frames = await _finished(client, plain("Name a fruit.", max_tokens=8))
    last = frames[-1]["sequence"]
    refused = await client.start(fork(original, last))
    assert refused.status_code == 400 and "add a message" in refused.json()["error"]["message"]
    forked_id, _ = await _finished(client, fork(original, last, "And a vegetable?"))
    run = await client.run(forked_id)
    assert run["messages"][0] == {"role": "user", "content": "And a vegetable?"}
    assert run["finalResponse"]["content"]


async def test_replay_reports_rounds_that_differ(client: Client) -> None:
    original, frames = await _finished(client, plain("Count to ten.", max_tokens=16))
    _, same = await _finished(client, fork(original, 0, replay=True))
    answer = next(f for f in frames if f["type"] == "assistant_message_completed")
    replayed = next(f for f in same if f["type"] == "assistant_message_completed")
    # Greedy sampling on the same seed: the same answer, and so no divergence reported.
    assert replayed["payload"]["content"] == answer["payload"]["content"]
    assert "replay_diverged" not in types(same)

    shorter = fork(original, 0, replay=True, sampling={"max_tokens": 2})
    diverged_id, diverged = await _finished(client, shorter)
    [report] = [f for f in diverged if f["type"] == "replay_diverged"]
    assert report["payload"]["round"] == 0
    assert report["payload"]["expected"]["content"] == answer["payload"]["content"]
    assert report["payload"]["actual"]["content"] != answer["payload"]["content"]
    assert (await client.run(diverged_id))["request"]["replay"] is True


async def test_forks_that_cannot_be(client: Client) -> None:
    original, _ = await _finished(client, plain(max_tokens=4))
    beyond = await client.start(fork(original, 10_000, "more"))
    assert beyond.status_code == 400 and "after_sequence" in beyond.text
    other = await client.http.post(BASE, json=fork(original, 0, "x"), headers=client.auth(True))
    assert other.status_code == 404
    missing = await client.start(fork("run_missing", 0, "x"))
    assert missing.status_code == 404
    no_source = await client.start({**plain(), "replay": True})
    assert no_source.status_code == 400 and "fork_from" in no_source.text
    running = await client.started(plain("Write a long story.", max_tokens=400))
    busy = await client.start(fork(running, 0, "x"))
    assert busy.status_code == 409, busy.text
    await client.cancel(running)
