"""A workflow event's status (`data.status` on the stream, `status` in `events[]`) comes from
the events before it that set one; it is read from those alone, not from the whole log, and
must equal the fold over the whole log. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sogni_intelligence.runtime.workflows import status_before, statuses_after
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.records import RecordStore


@pytest.fixture
async def records(database_url: str) -> AsyncIterator[RecordStore]:
    database = Database(database_url)
    await database.create_all()
    yield RecordStore(database)
    await database.close()


async def _append_all(records: RecordStore, record_id: str, log: list[tuple[str, dict]]) -> None:
    for number, (kind, payload) in enumerate(log):
        await records.append(record_id, kind, payload, dedupe_key=f"e{number}")


async def test_status_before_any_event_matches_the_fold_over_the_whole_log(
    records: RecordStore,
) -> None:
    record, _ = await records.create("workflow", "key_a", {})
    ticks = [("workflow_progress", {"stepId": "s1", "progress": i / 250}) for i in range(250)]
    log = [
        ("workflow_planned", {}),
        ("workflow_started", {}),
        *ticks,  # a long run of progress without a status
        ("workflow_waiting_for_user", {"reason": "cost"}),
        ("billing_preview_updated", {}),
        ("workflow_progress", {"status": "running", "costApproved": True}),
        *ticks[:5],
        ("workflow_user_input_required", {"stepId": "s2"}),
        ("workflow_progress", {"status": "running", "inputReceived": {"stepId": "s2"}}),
        ("step_started", {"stepId": "s3"}),
        ("workflow_completed", {"status": "partial_failure"}),
    ]
    await _append_all(records, record.id, log)
    events = await records.all_events(record.id)
    folded = statuses_after(events, "queued")
    assert folded[-1] == "partial_failure" and "waiting_for_user" in folded
    first = events[0].sequence
    assert await status_before(records, record.id, first) == "queued"
    for event, status in zip(events[1:], folded, strict=False):
        assert await status_before(records, record.id, event.sequence) == status, event


async def test_latest_events_are_the_tail_newest_first_and_filter_by_type(
    records: RecordStore,
) -> None:
    record, _ = await records.create("workflow", "key_a", {})
    await _append_all(records, record.id, [("step_started", {"n": i}) for i in range(30)])
    await records.append(record.id, "workflow_failed", {})
    everything = await records.all_events(record.id)
    tail = await records.latest_events(record.id, 10)
    assert [e.sequence for e in tail] == [e.sequence for e in everything[::-1][:10]]
    before = await records.latest_events(record.id, 5, before=everything[20].sequence)
    assert [e.sequence for e in before] == [e.sequence for e in everything[15:20][::-1]]
    failed = await records.latest_events(record.id, 5, types=["workflow_failed"])
    assert [e.type for e in failed] == ["workflow_failed"]
    after = await records.all_events(record.id, everything[-3].sequence)
    assert after == everything[-2:]
