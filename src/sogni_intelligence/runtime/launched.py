"""What the durable functions of this process work with.

DBOS registers workflows and steps as module functions and calls them again on recovery with
nothing but their recorded arguments, so the stores and services they use cannot be passed
in: each runtime binds its dependencies here once, when it launches, and its functions read
them back. One typed slot per runtime, so a function that runs before its launch says so.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from sogni_intelligence.store.records import RecordStore

T = TypeVar("T")


class Launched(Generic[T]):
    """A value bound once per process by a runtime's launch."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._value: T | None = None

    def bind(self, value: T) -> None:
        self._value = value

    def __call__(self) -> T:
        if self._value is None:
            raise RuntimeError(f"{self._what} is not launched")
        return self._value


#: The record store of every durable record (workflows, chat runs, their endings).
RECORDS: Launched[RecordStore] = Launched("the durable record store")
