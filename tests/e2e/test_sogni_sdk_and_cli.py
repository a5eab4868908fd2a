"""The official `sogni-client` SDK and the key-management CLI against the real server."""

from __future__ import annotations

import json

import httpx
import pytest
from sogni_client import SogniClient
from sogni_client.errors import ApiError

from tests.e2e.conftest import RunningServer

pytestmark = pytest.mark.slow


async def test_sogni_sdk_keeps_its_key_and_chats(server: RunningServer) -> None:
    sogni = await SogniClient.create(
        api_key=server.key, rest_endpoint=server.url, disable_socket=True, app_source="e2e"
    )
    try:
        account = await sogni.account.me()
        assert json.dumps(account).count("apiKeyFingerprint") == 1
        reply = await sogni.chat.hosted.create(
            model="qwen3.6-35b-a3b-gguf-iq4xs",
            messages=[{"role": "user", "content": "Say hi."}],
            sogni_tools=False,
            max_tokens=8,
        )
        assert reply["choices"][0]["message"]["content"]
    finally:
        await sogni.aclose()


def test_keys_cli_create_list_revoke(server: RunningServer) -> None:
    created = server.cli("keys", "--json", "create", "--name", "cli-test")
    assert created.returncode == 0, created.stderr
    new = json.loads(created.stdout)
    headers = {"Authorization": f"Bearer {new['key']}"}
    assert httpx.get(f"{server.url}/v1/models", headers=headers).status_code == 200

    listed = json.loads(server.cli("keys", "--json", "list").stdout)
    mine = next(row for row in listed if row["id"] == new["id"])
    assert mine["name"] == "cli-test" and not mine["revoked"]
    assert new["key"] not in json.dumps(listed)

    assert server.cli("keys", "revoke", new["id"]).returncode == 0
    assert server.cli("keys", "revoke", new["id"]).returncode == 1
    assert httpx.get(f"{server.url}/v1/models", headers=headers).status_code == 401


async def test_keys_cli_sets_roles_and_limits_the_sdk_reads_the_wait(
    server: RunningServer,
) -> None:
    created = server.cli(
        "keys", "--json", "create", "--name", "limited", "--requests-per-minute", "3"
    )
    assert created.returncode == 0, created.stderr
    new = json.loads(created.stdout)
    assert new["role"] == "user"
    listed = json.loads(server.cli("keys", "--json", "list").stdout)
    assert next(row for row in listed if row["id"] == new["id"])["limits"] == {
        "requests_per_minute": 3
    }
    sogni = await SogniClient.create(
        api_key=new["key"], rest_endpoint=server.url, disable_socket=True, app_source="e2e"
    )
    try:
        with pytest.raises(ApiError) as refused:
            for _ in range(5):  # the SDK's own account call counts too
                await sogni.workflows.list()
        assert refused.value.status == 429
        assert refused.value.retry_after is not None and 1 <= refused.value.retry_after <= 60
    finally:
        await sogni.aclose()

    lifted = server.cli("keys", "--json", "set", new["id"], "--requests-per-minute", "none")
    assert lifted.returncode == 0 and json.loads(lifted.stdout)["limits"] == {}
    promoted = server.cli("keys", "--json", "set", new["id"], "--role", "admin")
    assert json.loads(promoted.stdout)["role"] == "admin"
    headers = {"Authorization": f"Bearer {new['key']}"}
    assert httpx.get(f"{server.url}/v1/keys", headers=headers, timeout=10).status_code == 200
    assert server.cli("keys", "set", "key_missing", "--role", "user").returncode == 1
    bad = server.cli("keys", "set", new["id"], "--tokens-per-minute", "0")
    assert bad.returncode == 2 and "positive" in bad.stderr
