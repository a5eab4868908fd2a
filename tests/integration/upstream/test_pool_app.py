"""A pooled model through the whole app, driven by the `openai` SDK: clients see no failover,
a 503 in the OpenAI error shape when nothing is left, and `/v1/models` shows every member.

The app runs on httpx's ASGITransport; its pools talk real HTTP to three fake upstreams and
check them only when a test says so."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
import pytest_asyncio
from fake_upstream import FakeFleet

from sogni_intelligence.api.app import create_app
from sogni_intelligence.config import ModelConfig, Settings
from sogni_intelligence.llm.pool import PoolEngine
from sogni_intelligence.llm.registry import ModelRegistry
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.keys import KeyStore

pytestmark = pytest.mark.asyncio(loop_scope="module")

HELLO = [{"role": "user", "content": "Say hello"}]
RELAY = {"sogni_tools": "none"}
TEXT = "w0 w1 w2 "
SECRET = "pool-secret"


@dataclass
class Api:
    client: openai.AsyncOpenAI
    http: httpx.AsyncClient
    key: str
    fleet: FakeFleet
    registry: ModelRegistry

    def pool(self, model_id: str) -> PoolEngine:
        engine = self.registry.resolve(model_id).engine
        assert isinstance(engine, PoolEngine)
        return engine

    async def card(self, model_id: str) -> dict[str, Any]:
        response = await self.http.get(
            f"/v1/models/{model_id}", headers={"Authorization": f"Bearer {self.key}"}
        )
        assert response.status_code == 200, response.text
        return response.json()


def pooled_model(fleet: FakeFleet, model_id: str, upstream_model: str) -> ModelConfig:
    """The first upstream in the single-server form (credentials in its URL), two more listed."""
    first, *others = fleet.fakes
    return ModelConfig(
        id=model_id,
        engine="upstream",
        base_url=first.url.replace("http://", f"http://user:{SECRET}@") + "/v1",
        api_key=SECRET,
        upstream_model=upstream_model,
        upstreams=[
            {"base_url": others[0].url + "/v1", "weight": 2},
            {"base_url": others[1].url + "/v1", "api_key": SECRET},
        ],
        health_interval_s=3600,
    )


@pytest.fixture(scope="module")
def fleet() -> Iterator[FakeFleet]:
    fleet = FakeFleet(3)
    try:
        yield fleet
    finally:
        fleet.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory, fleet: FakeFleet) -> AsyncIterator[Api]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("pool-app"),
        models=[
            pooled_model(fleet, "pooled", "chunks-3"),
            pooled_model(fleet, "pooled-stall", "stall"),
        ],
        default_model="pooled",
    )
    settings.ensure_data_dir()
    db = Database(settings.resolved_database_url)
    await db.create_all()
    key, _ = await KeyStore(db).create("t")
    await db.close()

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        client = openai.AsyncOpenAI(
            api_key=key, base_url="http://test/v1", http_client=http, max_retries=0
        )
        try:
            yield Api(client, http, key, fleet, app.state.server.registry)
        finally:
            await client.close()
            await http.aclose()


@pytest_asyncio.fixture(autouse=True, loop_scope="module")
async def all_up(api: Api) -> AsyncIterator[None]:
    """Each test starts and leaves with every upstream running and in rotation."""
    yield
    for index in range(len(api.fleet.fakes)):
        await asyncio.to_thread(api.fleet.start, index)
    for model_id in ("pooled", "pooled-stall"):
        await api.pool(model_id).check()


async def test_models_show_each_member_without_credentials(api: Api) -> None:
    page = await api.client.models.list()
    cards = {card.id: card.model_dump() for card in page.data}
    urls = [fake.url + "/v1" for fake in api.fleet.fakes]

    card = cards["pooled"]
    assert card["engine"] == "upstream" and card["default"] is True
    assert card["served_by"] == ", ".join(f"{url} (chunks-3)" for url in urls)
    assert card["pool"] == [
        {
            "engine": "upstream",
            "url": url,
            "served_by": f"{url} (chunks-3)",
            "weight": weight,
            "healthy": True,
            "in_flight": 0,
            "failures": 0,
            "last_error": None,
        }
        for url, weight in zip(urls, (1.0, 2.0, 1.0), strict=True)
    ]
    assert (await api.card("pooled"))["pool"] == card["pool"]
    assert SECRET not in json.dumps(cards)


async def test_models_show_the_requests_each_member_is_answering(api: Api) -> None:
    pool = api.pool("pooled-stall")
    streams = [pool.stream({"messages": HELLO}) for _ in range(4)]
    try:
        for stream in streams:
            await anext(stream)

        card = await api.card("pooled-stall")
        assert [member["in_flight"] for member in card["pool"]] == [1, 2, 1]  # by weight
    finally:
        for stream in streams:
            await stream.aclose()  # type: ignore[attr-defined]
    card = await api.card("pooled-stall")
    assert [member["in_flight"] for member in card["pool"]] == [0, 0, 0]


async def test_clients_never_see_a_killed_upstream_and_it_returns(api: Api) -> None:
    await asyncio.to_thread(api.fleet.stop, 1)

    for stream in (False, True, False, True, False, True):
        if stream:
            chunks = await api.client.chat.completions.create(
                model="pooled", messages=HELLO, stream=True, extra_body=RELAY
            )
            text = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
        else:
            completion = await api.client.chat.completions.create(
                model="pooled", messages=HELLO, extra_body=RELAY
            )
            text = completion.choices[0].message.content or ""
        assert text == TEXT

    gone = (await api.card("pooled"))["pool"][1]
    assert gone["healthy"] is False
    assert f"upstream {api.fleet.fakes[1].url}/v1 is unreachable" in gone["last_error"]

    await asyncio.to_thread(api.fleet.start, 1)
    await api.pool("pooled").check()
    back = (await api.card("pooled"))["pool"][1]
    assert back["healthy"] is True and back["failures"] == 0
    assert back["last_error"] == gone["last_error"]


@pytest.mark.parametrize(
    ("stream", "extra"),
    [(False, RELAY), (True, RELAY), (False, {}), (True, {})],
    ids=["plain", "stream", "hosted-tools", "hosted-tools-stream"],
)
async def test_with_every_upstream_down_the_answer_is_a_503(
    api: Api, stream: bool, extra: dict[str, Any]
) -> None:
    for index in range(len(api.fleet.fakes)):
        await asyncio.to_thread(api.fleet.stop, index)

    with pytest.raises(openai.InternalServerError) as info:
        await api.client.chat.completions.create(
            model="pooled", messages=HELLO, stream=stream, extra_body=extra
        )

    assert info.value.status_code == 503
    body = info.value.body
    assert isinstance(body, dict) and set(body) == {"message", "type", "code", "param"}
    assert (body["type"], body["code"]) == ("server_error", "upstream_unavailable")
    assert body["message"].startswith("no healthy upstream serves the model 'pooled' now (")
    for fake in api.fleet.fakes:
        assert f"upstream {fake.url}/v1 is unreachable" in body["message"]
    assert SECRET not in body["message"]
    card = await api.card("pooled")
    assert [member["healthy"] for member in card["pool"]] == [False, False, False]
