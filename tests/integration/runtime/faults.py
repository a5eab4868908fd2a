"""Make one part of the durable layer fail on purpose, in process or in a runner process.

Each fault replaces one seam with a function that raises `InjectedFault`; the tests then check
that the record still ends (`failed`/`partial_failure`, a `failureReason` naming the fault,
its terminal event). The seams are where real failures come from:

- `ingest`: bringing a media reference into the store (a fetch that breaks);
- `tool`: running a plan step's tool (a backend that crashes instead of answering);
- `engine`: the LLM engine's token stream;
- `records`: the record store's data writes (the database failing under a step).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import pytest

from sogni_intelligence.llm.embedded import EmbeddedEngine
from sogni_intelligence.runtime import workflow_steps
from sogni_intelligence.store.records import RecordStore
from sogni_intelligence.tools import media_inputs

Fault = Literal["ingest", "tool", "engine", "records"]
FAULTS: tuple[Fault, ...] = ("ingest", "tool", "engine", "records")


class InjectedFault(RuntimeError):
    """The failure a test asked for."""


def _raiser(fault: str) -> Any:
    async def fail(*_: Any, **__: Any) -> Any:
        raise InjectedFault(f"injected {fault} fault")

    return fail


def _failing_stream(*_: Any, **__: Any) -> Any:
    async def chunks() -> Any:
        raise InjectedFault("injected engine fault")
        yield  # an async generator that fails on its first chunk

    return chunks()


def inject(monkeypatch: pytest.MonkeyPatch, fault: Fault) -> None:
    """Make `fault`'s seam raise for the rest of the test."""
    if fault == "ingest":
        monkeypatch.setattr(media_inputs, "fetch_into_store", _raiser(fault))
    elif fault == "tool":
        monkeypatch.setattr(workflow_steps, "execute", _raiser(fault))
    elif fault == "engine":
        monkeypatch.setattr(EmbeddedEngine, "stream", _failing_stream)
    else:
        for data_write in ("patch", "revise"):
            monkeypatch.setattr(RecordStore, data_write, _raiser(fault))


@contextmanager
def injected(fault: Fault) -> Iterator[None]:
    """`inject` outside pytest (a runner process), undone at the end of the block."""
    patcher = pytest.MonkeyPatch()
    try:
        inject(patcher, fault)
        yield
    finally:
        patcher.undo()
