"""Where an event stream resumes, from `?after=` or a `Last-Event-ID` header a client sent."""

from __future__ import annotations

import pytest

from sogni_intelligence.api.sse import cursor
from sogni_intelligence.api.wire import MAX_DB_INT
from sogni_intelligence.store.records import BEFORE_FIRST


@pytest.mark.parametrize(
    ("after", "last_event_id", "expected"),
    [
        (None, None, BEFORE_FIRST),
        (3, "7", 3),
        (None, " 7 ", 7),
        (None, "", BEFORE_FIRST),
        (None, "abc", BEFORE_FIRST),
        (None, "-1", BEFORE_FIRST),
        # a digit to `str.isdigit`, not to `int`
        (None, "\u00b2", BEFORE_FIRST),
        # past any sequence a database holds: nothing comes after it
        (None, "9" * 40, MAX_DB_INT),
    ],
)
def test_cursor(after: int | None, last_event_id: str | None, expected: int) -> None:
    assert cursor(after, last_event_id) == expected
