"""Replay records through the official SDK (`sogni.replay`) against the real server: a chat
run writes its own as it ends; a client's is redacted on the server; each key sees its own."""

from __future__ import annotations

import asyncio
import json

import pytest
from sogni_client import SogniClient
from sogni_client.errors import ApiError

from tests.e2e.conftest import RunningServer

pytestmark = pytest.mark.slow

SECRET_KEY = "sk-sogni-NotARealKeyButLongEnough123"


async def _client(server: RunningServer, key: str) -> SogniClient:
    return await SogniClient.create(api_key=key, rest_endpoint=server.url, disable_socket=True)


async def _replay_of(sogni: SogniClient, run_id: str) -> dict:
    """The run's record, written just after its last event."""
    for _ in range(100):
        try:
            return await sogni.replay.get(run_id)
        except ApiError as error:
            assert error.status == 404
            await asyncio.sleep(0.1)
    raise AssertionError(f"no replay record for {run_id}")


async def test_a_finished_chat_run_writes_its_replay_record(server: RunningServer) -> None:
    sogni = await _client(server, server.key)
    try:
        run = await sogni.chat.runs.create(
            {
                "messages": [{"role": "user", "content": "Name one colour. Mail me at x@y.org"}],
                "sogni_tools": False,
                "sampling": {"max_tokens": 12, "temperature": 0},
            }
        )
        events = [e async for e in sogni.chat.runs.stream_events(run["runId"])]
        assert events[-1]["type"] == "run_completed", [e["type"] for e in events]
        replay = await _replay_of(sogni, run["runId"])
        record = replay["record"]
        assert record["run_id"] == run["runId"] and record["status"] == "completed"
        assert record["rounds"][0]["content"] == events[-1]["payload"]["content"]
        assert "x@y.org" not in json.dumps(record) and "[email]" in record["user_request"]
        assert replay["create_time"] > 0
        listed = (await sogni.replay.list(limit=5))["records"]
        mine = next(r for r in listed if r["runId"] == run["runId"])
        assert mine["rounds"] == 1 and mine["modelId"] == record["model_id"]
    finally:
        await sogni.aclose()


async def test_written_records_are_redacted_listed_and_private(server: RunningServer) -> None:
    sogni = await _client(server, server.key)
    other_key = json.loads(server.cli("keys", "--json", "create", "--name", "other").stdout)["key"]
    other = await _client(server, other_key)
    try:
        written = await sogni.replay.write(
            {
                "run_id": "harness-run-1",
                "schema_version": 3,
                "model_id": "qwen3.6-35b-a3b-gguf-iq4xs",
                "user_request": f"use {SECRET_KEY} please",
                "final_response": {"text": "done", "image": "data:image/png;base64,AAAAAAAA"},
                "rounds": [{"headers": {"Authorization": f"Bearer {SECRET_KEY}"}}, {}],
            }
        )
        assert written["run_id"] == "harness-run-1" and written["redacted"] is True
        assert written["schema_version"] == 3 and written["create_time"] > 0
        stored = (await sogni.replay.get("harness-run-1"))["record"]
        assert SECRET_KEY not in json.dumps(stored) and "AAAAAAAA" not in json.dumps(stored)
        summary = next(
            r for r in (await sogni.replay.list())["records"] if r["runId"] == "harness-run-1"
        )
        assert summary["rounds"] == 2 and summary["schemaVersion"] == 3
        with pytest.raises(ApiError) as hidden:
            await other.replay.get("harness-run-1")
        assert hidden.value.status == 404
        assert (await other.replay.list())["records"] == []
        with pytest.raises(ApiError) as bad:
            await sogni.replay.write({"run_id": "../etc/passwd"})
        assert bad.value.status == 400
        with pytest.raises(ApiError) as big:
            await sogni.replay.write({"run_id": "big", "rounds": ["x" * 3_000_000]})
        assert big.value.status == 413
    finally:
        await sogni.aclose()
        await other.aclose()
