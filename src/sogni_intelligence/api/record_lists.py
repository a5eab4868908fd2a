"""The query parameters the record lists share (workflows, chat runs): paging, a status
filter and, for admins, every key's records."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from fastapi import Query

from sogni_intelligence.api.auth import listed_owner
from sogni_intelligence.api.wire import MAX_DB_INT
from sogni_intelligence.errors import invalid_request
from sogni_intelligence.store.keys import KeyInfo
from sogni_intelligence.store.records import Record, RecordKind, RecordStore, Status

Offset = Annotated[int, Query(ge=0, le=MAX_DB_INT)]
#: `own` (the default) or `all`: every key's records, for an admin key.
Scope = Annotated[Literal["own", "all"], Query()]
#: Comma-separated statuses, e.g. `running,waiting_for_user`.
StatusFilter = Annotated[str | None, Query(max_length=200)]

STATUSES: frozenset[str] = frozenset(get_args(Status))


def statuses_in(raw: str | None) -> list[Status] | None:
    """The statuses a `status=` filter names; None for no filter; a 400 for an unknown one."""
    if raw is None or not raw.strip():
        return None
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in names if name not in STATUSES]
    if unknown:
        raise invalid_request(
            f"unknown status {unknown[0]!r}; the statuses are {', '.join(sorted(STATUSES))}",
            "status",
        )
    return names  # type: ignore[return-value]


async def listed(
    records: RecordStore,
    kind: RecordKind,
    key: KeyInfo,
    offset: int,
    limit: int,
    status: str | None,
    scope: str,
) -> tuple[list[Record], int | None]:
    """A page of the records a list route shows this key (see `listed_owner`)."""
    return await records.list(kind, listed_owner(key, scope), offset, limit, statuses_in(status))
