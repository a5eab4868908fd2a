"""The official `sogni-client` SDK and the key-management CLI against the real server."""

from __future__ import annotations

import json

import httpx
import pytest
from sogni_client import SogniClient

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
