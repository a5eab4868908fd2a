"""Key roles, the admin key routes, record lists with filters, and per-key limits answered as
429 with the wait, through the whole app in process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from sogni_intelligence.config import ModelConfig, Settings
from sogni_intelligence.store.keys import KeyLimits, KeyStore, Role
from tests.conftest import in_process_app

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
WORKFLOWS = "/v1/creative-agent/workflows"
ONE_IMAGE = {
    "title": "One image",
    "steps": [{"id": "a", "toolName": "generate_image", "arguments": {"prompt": "a red cube"}}],
}


class Api:
    def __init__(self, http: httpx.AsyncClient, keys: KeyStore) -> None:
        self.http = http
        self.keys = keys

    async def key(self, role: Role = "user", **limits: float) -> tuple[str, str]:
        """A new key's secret and id."""
        secret, info = await self.keys.create(role, role, KeyLimits(**limits))  # type: ignore[arg-type]
        return secret, info.id

    async def get(self, path: str, key: str, **params: str) -> httpx.Response:
        return await self.http.get(path, params=params, headers={"Authorization": f"Bearer {key}"})

    async def send(self, method: str, path: str, key: str, body: object = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"}
        return await self.http.request(method, path, json=body, headers=headers)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    data: Path = tmp_path_factory.mktemp("limits")
    settings = Settings(
        data_dir=data,
        models=[ModelConfig(id="up", engine="upstream", base_url="http://127.0.0.1:9/v1")],
        default_model="up",
        key_cache_seconds=0,
        # Every workflow waits for its cost to be confirmed: it stays unfinished, and runs
        # nothing, for as long as a test needs.
        workflow_cost_confirmation_units=0,
    )
    async with in_process_app(settings) as running:
        yield Api(running.http, running.app.state.server.keys)


def _rate_limited(response: httpx.Response, code: str) -> int:
    """The wait a 429 asks for; it is in the header and in the body under both spellings."""
    assert response.status_code == 429, response.text
    body = response.json()
    wait = int(response.headers["Retry-After"])
    assert wait >= 1 and body["retry_after"] == wait and body["retryAfter"] == wait
    assert body["error"]["type"] == "rate_limit_error" and body["error"]["code"] == code
    return wait


async def test_requests_per_minute_answer_429_with_the_wait(api: Api) -> None:
    key, _ = await api.key(requests_per_minute=2)
    for _ in range(2):
        assert (await api.get("/v1/account/me", key)).status_code == 200
    refused = await api.get("/v1/account/me", key)
    assert _rate_limited(refused, "requests_per_minute") <= 60
    assert "2 requests per minute" in refused.json()["error"]["message"]
    # The Sogni error shape of the workflow routes carries it too.
    sogni = await api.get(WORKFLOWS, key)
    _rate_limited(sogni, "requests_per_minute")
    assert sogni.json()["status"] == "error" and sogni.json()["errorCode"] == 429
    # Another key is not held back by this one's use.
    other, _ = await api.key()
    assert (await api.get("/v1/account/me", other)).status_code == 200


async def test_daily_capacity_units_refuse_a_workflow_over_budget(api: Api) -> None:
    key, key_id = await api.key(daily_capacity_units=0.01)
    refused = await api.send("POST", WORKFLOWS, key, {"input": ONE_IMAGE})
    _rate_limited(refused, "daily_capacity_units")
    assert (await api.get(WORKFLOWS, key)).json()["data"]["workflows"] == []
    admin, _ = await api.key("admin")
    view = (await api.get(f"/v1/keys/{key_id}", admin)).json()["data"]["key"]
    assert view["usage"]["capacityUnitsToday"] == 0  # the refused workflow took nothing


async def test_concurrent_records_limit_counts_unfinished_ones(api: Api) -> None:
    key, _ = await api.key(concurrent_records=1)
    first = await api.send("POST", WORKFLOWS, key, {"input": ONE_IMAGE})
    assert first.status_code == 201, first.text
    workflow_id = first.json()["data"]["workflow"]["workflowId"]
    second = await api.send("POST", WORKFLOWS, key, {"input": ONE_IMAGE})
    _rate_limited(second, "concurrent_records")
    run = await api.send(
        "POST", "/v1/chat/runs", key, {"messages": [{"role": "user", "content": "hi"}]}
    )
    _rate_limited(run, "concurrent_records")
    cancelled = await api.send("POST", f"{WORKFLOWS}/{workflow_id}/cancel", key, {})
    assert cancelled.status_code == 200
    third = await api.send("POST", WORKFLOWS, key, {"input": ONE_IMAGE})
    assert third.status_code == 201, third.text


async def test_lists_filter_by_status_and_admins_see_every_key(api: Api) -> None:
    user, _ = await api.key()
    admin, _ = await api.key("admin")
    started = await api.send("POST", WORKFLOWS, user, {"input": ONE_IMAGE})
    workflow_id = started.json()["data"]["workflow"]["workflowId"]
    waiting = await api.get(WORKFLOWS, user, status="waiting_for_user,running")
    assert [w["workflowId"] for w in waiting.json()["data"]["workflows"]] == [workflow_id]
    done = await api.get(WORKFLOWS, user, status="completed")
    assert done.json()["data"]["workflows"] == []
    bad = await api.get(WORKFLOWS, user, status="finished")
    assert bad.status_code == 400 and "unknown status 'finished'" in bad.json()["message"]
    assert (await api.get(WORKFLOWS, user, scope="everything")).status_code == 400

    refused = await api.get(WORKFLOWS, user, scope="all")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "admin_key_required"
    own = await api.get(WORKFLOWS, admin)
    assert workflow_id not in {w["workflowId"] for w in own.json()["data"]["workflows"]}
    everyone = await api.get(WORKFLOWS, admin, scope="all", limit="200")
    assert workflow_id in {w["workflowId"] for w in everyone.json()["data"]["workflows"]}
    # An admin reads, follows and cancels another key's workflow; a user cannot see an
    # admin's or another user's.
    assert (await api.get(f"{WORKFLOWS}/{workflow_id}", admin)).status_code == 200
    assert (await api.get(f"{WORKFLOWS}/{workflow_id}/events", admin)).status_code == 200
    stranger, _ = await api.key()
    assert (await api.get(f"{WORKFLOWS}/{workflow_id}", stranger)).status_code == 404
    cancel = await api.send("POST", f"{WORKFLOWS}/{workflow_id}/cancel", admin, {})
    assert cancel.json()["data"]["transitioned"] is True

    runs = await api.get("/v1/chat/runs", user)
    assert runs.status_code == 200 and runs.json()["data"] == {"runs": [], "next": None}
    assert (await api.get("/v1/chat/runs", user, scope="all")).status_code == 403
    assert (await api.get("/v1/chat/runs", admin, scope="all")).status_code == 200


async def test_admins_manage_keys_and_users_cannot(api: Api) -> None:
    user, _ = await api.key()
    admin, admin_id = await api.key("admin")
    me = (await api.get("/v1/account/me", admin)).json()["data"]["account"]
    assert me["role"] == "admin"
    assert (await api.get("/v1/account/me", user)).json()["data"]["account"]["role"] == "user"
    for method, path in (
        ("GET", "/v1/keys"),
        ("POST", "/v1/keys"),
        ("DELETE", f"/v1/keys/{admin_id}"),
    ):
        refused = await api.send(method, path, user, {} if method == "POST" else None)
        assert refused.status_code == 403, (method, path, refused.text)

    created = await api.send(
        "POST",
        "/v1/keys",
        admin,
        {"name": "ci", "role": "user", "limits": {"requestsPerMinute": 5}},
    )
    assert created.status_code == 201, created.text
    secret, info = created.json()["data"]["key"], created.json()["data"]["info"]
    assert secret.startswith("sk-sogni-") and info["limits"]["requestsPerMinute"] == 5
    assert (await api.get("/v1/account/me", secret)).status_code == 200
    listed = (await api.get("/v1/keys", admin)).json()["data"]["keys"]
    row = next(k for k in listed if k["id"] == info["id"])
    assert secret not in str(listed) and row["usage"]["requestsThisMinute"] == 1

    changed = await api.send(
        "PATCH",
        f"/v1/keys/{info['id']}",
        admin,
        {"role": "admin", "limits": {"requests_per_minute": None, "tokens_per_minute": 1000}},
    )
    limits = changed.json()["data"]["key"]["limits"]
    assert changed.json()["data"]["key"]["role"] == "admin"
    assert limits["requestsPerMinute"] is None and limits["tokensPerMinute"] == 1000
    bad = await api.send(
        "PATCH", f"/v1/keys/{info['id']}", admin, {"limits": {"tokensPerMinute": 0}}
    )
    assert bad.status_code == 400

    assert (await api.send("DELETE", f"/v1/keys/{admin_id}", admin)).status_code == 409
    demote = await api.send("PATCH", f"/v1/keys/{admin_id}", admin, {"role": "user"})
    assert demote.status_code == 409
    assert (await api.send("DELETE", "/v1/keys/key_missing", admin)).status_code == 404
    revoked = await api.send("DELETE", f"/v1/keys/{info['id']}", admin)
    assert revoked.json()["data"] == {"revoked": True}
    assert (await api.get("/v1/account/me", secret)).status_code == 401
    assert (await api.get("/v1/account/me", user)).status_code == 200
