"""API-key auth for every `/v1` route: `Authorization: Bearer <key>`, `api-key: <key>` or
(as Anthropic clients send it) `x-api-key: <key>`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from sogni_intelligence.api.state import server_of
from sogni_intelligence.errors import ServiceError
from sogni_intelligence.store.keys import KeyInfo


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    for name in ("api-key", "x-api-key"):
        api_key = request.headers.get(name, "").strip()
        if api_key:
            return api_key
    return None


async def require_key(request: Request) -> KeyInfo:
    key = presented_key(request)
    if key is None:
        raise ServiceError(
            "Missing API key: send 'Authorization: Bearer <key>' or 'api-key: <key>'.",
            401,
            "authentication_error",
            "missing_api_key",
        )
    server = server_of(request)
    info = await server.keys.check(key)
    if info is None:
        raise ServiceError("Invalid API key.", 401, "authentication_error", "invalid_api_key")
    request.state.key_id = info.id  # for the request's log line
    await server.usage.admit_request(info)
    return info


async def require_admin(request: Request) -> KeyInfo:
    """A key with the `admin` role: it manages keys and may read every key's records."""
    info = await require_key(request)
    if not info.is_admin:
        raise ServiceError(
            "This needs an admin key.", 403, "permission_error", "admin_key_required"
        )
    return info


CurrentKey = Annotated[KeyInfo, Depends(require_key)]
AdminKey = Annotated[KeyInfo, Depends(require_admin)]


def readable_owner(key: KeyInfo) -> str | None:
    """The owner whose records this key may read and cancel: its own, or anyone's (None) for
    an admin."""
    return None if key.is_admin else key.id


def listed_owner(key: KeyInfo, scope: str) -> str | None:
    """The owner a list shows: the key's own records, or with `scope=all` (admins only)
    everyone's."""
    if scope == "own":
        return key.id
    if not key.is_admin:
        raise ServiceError(
            "scope=all lists every key's records and needs an admin key.",
            403,
            "permission_error",
            "admin_key_required",
        )
    return None
