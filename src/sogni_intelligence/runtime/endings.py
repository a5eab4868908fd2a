"""Every durable record ends: the one place that turns a failure into a terminal status.

Two mechanisms, one rule (a record that can no longer make progress ends `failed`, or
`partial_failure` when some of its work succeeded, with a `failureReason` and its terminal
event, in one transaction):

- `ends_record_on_error` wraps a DBOS workflow function: any exception that escapes it (a
  fetch refused during ingest, a broken tool, the engine, the record store) ends the record
  through a DBOS step, so the ending is itself durable and also happens for a workflow that
  DBOS recovers after a restart.
- `sweep` ends the records whose DBOS workflow has stopped without ending them: the ending step
  itself failed (the database was down), DBOS gave up recovering it, or it was cancelled
  behind our back. API processes run it at start and then periodically.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from dbos import DBOS

from sogni_intelligence.errors import ServiceError
from sogni_intelligence.runtime.launched import RECORDS
from sogni_intelligence.store.records import Announcement, Record, RecordStore

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

#: DBOS statuses of a workflow that will not run again by itself.
STOPPED = ("SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")
#: Record statuses a failure may end (a terminal status always stands).
OPEN = frozenset({"queued", "running", "waiting_for_user"})
MAX_REASON_CHARS = 2000


def describe(exc: BaseException) -> str:
    """A failure reason a person can act on: a service error's own message (it is written for
    clients), else the error's type and message; for a step that used up its retries, the
    last error."""
    tries = getattr(exc, "errors", None)  # DBOS's "step retried too often" carries each error
    if isinstance(tries, list) and tries and isinstance(tries[-1], BaseException):
        text = f"{len(tries)} tries failed, the last: {describe(tries[-1])}"
    elif isinstance(exc, ServiceError):
        text = exc.message
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:MAX_REASON_CHARS]


# --- how each kind of record ends ---------------------------------------------------------------


def _workflow_ending(record: Record, reason: str) -> tuple[str, Announcement, dict[str, Any]]:
    steps = record.data.get("steps", [])
    succeeded = any(s.get("status") == "completed" for s in steps)
    status = "partial_failure" if succeeded else "failed"
    unfinished = {"pending", "running"}
    patch: dict[str, Any] = {
        "failureReason": reason,
        "error": {"message": reason},
        "steps": [
            {**s, "status": "skipped", "error": {"message": f"not run: {reason}"}}
            if s.get("status", "pending") in unfinished
            else s
            for s in steps
        ],
    }
    event = "workflow_completed" if succeeded else "workflow_failed"
    return status, Announcement(event, {"status": status, "reason": reason}, "terminal"), patch


def _chat_run_ending(record: Record, reason: str) -> tuple[str, Announcement, dict[str, Any]]:
    succeeded = any(r.get("status") == "ok" for r in record.data.get("toolResults", []))
    status = "partial_failure" if succeeded else "failed"
    final = dict(record.data.get("finalResponse") or {"content": ""})
    final["finishReason"] = "partial_failure" if succeeded else final.get("finishReason", "error")
    patch: dict[str, Any] = {"failureReason": reason, "finalResponse": final}
    event = "run_partial_failure" if succeeded else "run_failed"
    return status, Announcement(event, {"status": status, "reason": reason}, "terminal"), patch


_ENDINGS: dict[str, Callable[[Record, str], tuple[str, Announcement, dict[str, Any]]]] = {
    "workflow": _workflow_ending,
    "chat_run": _chat_run_ending,
}


async def end_failed(records: RecordStore, record_id: str, reason: str) -> str | None:
    """End an open record with `reason`; its final status, or None when there is no record.
    A record that already ended keeps its status (a cancel or a finish always stands)."""
    record = await records.get(record_id)
    if record is None:
        return None
    if record.status not in OPEN:
        return record.status
    status, event, patch = _ENDINGS[record.kind](record, reason)
    patch["completedAt"] = datetime.now(UTC).isoformat()
    moved = await records.transition(record_id, status, allowed_from=OPEN, patch=patch, event=event)
    if moved is None:  # it ended meanwhile by another way
        current = await records.get(record_id)
        return current.status if current else None
    log.warning("%s %s ended %s: %s", record.kind, record_id, status, reason)
    return status


@DBOS.step(retries_allowed=True, max_attempts=4, interval_seconds=0.5, backoff_rate=2.0)
async def end_failed_step(record_id: str, reason: str) -> str | None:
    return await end_failed(RECORDS(), record_id, reason)


# --- the wrapper ----------------------------------------------------------------------------------


def ends_record_on_error(
    fn: Callable[P, Awaitable[R]],
) -> Callable[P, Awaitable[R | str | None]]:
    """Wrap a DBOS workflow function whose first argument is its record's id (apply it under
    `@DBOS.workflow()`). DBOS's own cancellation is a BaseException and passes through."""

    @functools.wraps(fn)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R | str | None:
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:
            record_id = str(args[0])
            if not isinstance(exc, ServiceError):  # a client's bad input needs no traceback
                log.exception("durable work of %s failed", record_id)
            return await end_failed_step(record_id, describe(exc))

    return run


# --- the sweeper --------------------------------------------------------------------------------


async def sweep(records: RecordStore) -> int:
    """End every open record whose DBOS workflow has stopped; how many were ended. A record
    whose workflow finished while it waits for the user (a clarifying question) is left: the
    user's answer continues it."""
    candidates = {
        r.id: r
        for kind in _ENDINGS
        for r in await records.in_status(kind, tuple(OPEN))  # type: ignore[arg-type]
    }
    if not candidates:
        return 0
    stopped = await DBOS.list_workflows_async(
        workflow_ids=list(candidates), status=list(STOPPED), load_input=False, load_output=True
    )
    ended = 0
    for status in stopped:
        record = candidates[status.workflow_id]
        if status.status == "SUCCESS" and record.status == "waiting_for_user":
            continue
        if status.status == "SUCCESS" and record.status in ("queued", "running"):
            reason = "the durable workflow finished without ending the record"
        elif status.error is not None:
            reason = f"the durable workflow stopped ({status.status}): {describe(status.error)}"
        else:
            reason = f"the durable workflow stopped ({status.status})"
        if await end_failed(records, record.id, reason) in ("failed", "partial_failure"):
            ended += 1
    return ended


async def sweep_forever(records: RecordStore, interval_s: float) -> None:
    """`sweep` every `interval_s` seconds until cancelled; a failed sweep is retried later."""
    while True:
        try:
            await sweep(records)
        except Exception:
            log.warning("sweeping durable records failed; retrying", exc_info=True)
        await asyncio.sleep(interval_s)
