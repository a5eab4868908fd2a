"""A process polls its DBOS queues only once another process may have filled them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from dbos import DBOS

from sogni_intelligence.runtime import durable

from .conftest import runtime_settings

#: Short, so that a job would have been taken many times over if its queue were polled.
POLL_S = 0.05


@DBOS.workflow()
async def _doubled(value: int) -> int:
    return 2 * value


async def _launch(tmp_path: Path, database_url: str, **how: object) -> None:
    settings = runtime_settings(tmp_path, database_url, queue_poll_s=POLL_S)
    await durable.launch(settings, **how)  # type: ignore[arg-type]


async def test_a_lone_process_takes_queued_jobs_once_it_polls(
    tmp_path: Path, runtime_database_url: str
) -> None:
    await _launch(tmp_path, runtime_database_url)
    try:
        job = await DBOS.enqueue_workflow_async("image", _doubled, 21)
        await asyncio.sleep(1.5)  # DBOS's queue manager looks at its queue list every second
        assert (await job.get_status()).status == "ENQUEUED"
        durable.poll_queues()
        assert await asyncio.wait_for(job.get_result(), 15) == 42
    finally:
        durable.shutdown()


async def test_a_job_waiting_at_launch_is_taken_without_company(
    tmp_path: Path, runtime_database_url: str
) -> None:
    await _launch(tmp_path, runtime_database_url)
    try:
        job_id = (await DBOS.enqueue_workflow_async("video", _doubled, 5)).get_workflow_id()
    finally:
        durable.shutdown()
    await _launch(tmp_path, runtime_database_url)
    try:
        job = await DBOS.retrieve_workflow_async(job_id)
        assert await asyncio.wait_for(job.get_result(), 15) == 10
    finally:
        durable.shutdown()


@pytest.mark.parametrize("orchestrates", [True, False])
async def test_polling_covers_the_served_queues_and_orchestration(
    tmp_path: Path, runtime_database_url: str, orchestrates: bool
) -> None:
    await _launch(tmp_path, runtime_database_url, listen=["audio"], orchestrates=orchestrates)
    try:
        jobs = {
            queue: await DBOS.enqueue_workflow_async(queue, _doubled, 1)
            for queue in ("audio", "image", "orchestration")
        }
        durable.poll_queues()
        assert await asyncio.wait_for(jobs["audio"].get_result(), 15) == 2
        expected = {"image": "ENQUEUED", "orchestration": "SUCCESS" if orchestrates else "ENQUEUED"}
        if orchestrates:
            await asyncio.wait_for(jobs["orchestration"].get_result(), 15)
        await asyncio.sleep(0.5)
        assert {q: (await jobs[q].get_status()).status for q in expected} == expected
    finally:
        durable.shutdown()
