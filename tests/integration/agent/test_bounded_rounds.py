"""Every LLM round of the agent loop is bounded, on the real default model (SmolLM2-135M,
greedy, so its answers repeat run after run): a token bound per round when the request sets
none, and a cut when the generated text loops, in chat completions with hosted tools and in
durable chat runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from sogni_intelligence.agent.driver import Content, Final
from sogni_intelligence.agent.loop import AgentLoop, LoopLimits, Session
from sogni_intelligence.tools.media_context import MediaContext
from tests.conftest import InProcessApp, embedded_settings, in_process_app

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

STORY = "Write a long story about a dragon who learns to fly."
#: The tiny model answers this with "I love you. " over and over until something stops it.
LOOPING = "Say 'I love you' again and again, without stopping. Never stop."
REPEAT = "I love you. "


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[InProcessApp]:
    settings = embedded_settings(tmp_path_factory.mktemp("bounded"), threads=1)
    async with in_process_app(settings, timeout_s=300) as app:
        yield app


def with_bound(running: InProcessApp, tokens: int) -> AgentLoop:
    """The app's loop, with the per-round bound a server configured with `tokens` has."""
    agent: AgentLoop = running.app.state.server.chat.agent
    settings = running.app.state.server.settings.model_copy(
        update={"agent_max_tokens_per_round": tokens}
    )
    return AgentLoop(
        agent.workflows,
        agent.assets,
        agent.services,
        agent.base_url,
        LoopLimits.from_settings(settings),
    )


@pytest.mark.parametrize(("asked", "generated"), [(None, 24), (10, 10), (500, 24)])
async def test_a_round_generates_at_most_the_bound(
    running: InProcessApp, asked: int | None, generated: int
) -> None:
    """No max_tokens: the bound; a lower one wins; a higher one is held to the bound."""
    request: dict[str, Any] = {"messages": [{"role": "user", "content": STORY}], "temperature": 0}
    if asked is not None:
        request["max_tokens"] = asked
    session = Session(
        owner=running.owner,
        engine=running.app.state.server.chat.registry.resolve(None).engine,
        request=request,
        client_tools=[],
        hosted={},
        tool_choice="auto",
        media=MediaContext(),
    )
    events = [event async for event in with_bound(running, 24).run(session)]
    final = events[-1]
    assert isinstance(final, Final) and final.finish_reason == "length"
    assert final.message["content"] == "".join(e.text for e in events if isinstance(e, Content))
    assert session.usage["completion_tokens"] == generated


async def test_a_looping_answer_is_cut_after_its_first_repetitions(running: InProcessApp) -> None:
    response = await running.http.post(
        "/v1/chat/completions",
        json={
            "messages": [{"role": "user", "content": LOOPING}],
            "temperature": 0,
            "tool_choice": "none",  # hosted tools on offer, none called: one round
        },
        headers={"Authorization": f"Bearer {running.key}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    choice = body["choices"][0]
    content = choice["message"]["content"]
    assert choice["finish_reason"] == "length", content
    # Cut at the end of a repetition, soon after the 200 characters that tell a loop, long
    # before the round's 1024-token bound.
    assert content.endswith(REPEAT) and content.count(REPEAT) >= 4
    assert 200 <= len(content) < 200 + len(REPEAT) * 2, content
    assert 0 < body["usage"]["completion_tokens"] < 200


async def test_a_durable_run_ends_a_looping_answer_with_finish_reason_length(
    running: InProcessApp,
) -> None:
    auth = {"Authorization": f"Bearer {running.key}"}
    started = await running.http.post(
        "/v1/chat/runs",
        json={
            "messages": [{"role": "user", "content": LOOPING}],
            "tool_choice": "none",
            "sampling": {"temperature": 0},
        },
        headers=auth,
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["data"]["run"]["runId"]
    async with asyncio.timeout(240):
        while True:
            got = await running.http.get(f"/v1/chat/runs/{run_id}", headers=auth)
            run = got.json()["data"]["run"]
            if run["status"] not in ("queued", "running"):
                break
            await asyncio.sleep(0.2)
    assert run["status"] == "completed", run
    final = run["finalResponse"]
    assert final["finishReason"] == "length"
    assert final["content"].endswith(REPEAT)
    assert 200 <= len(final["content"]) < 200 + len(REPEAT) * 2
    events = (await running.http.get(f"/v1/chat/runs/{run_id}/events", headers=auth)).json()
    events = events["data"]["events"]
    # What went out as deltas is the answer, and the round itself says why it ended.
    deltas = [e["payload"]["delta"] for e in events if e["type"] == "assistant_message_delta"]
    assert "".join(deltas) == final["content"]
    [completed] = [e for e in events if e["type"] == "assistant_message_completed"]
    assert completed["payload"]["finishReason"] == "length"
