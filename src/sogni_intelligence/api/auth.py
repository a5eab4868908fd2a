"""API-key auth for every `/v1` route: `Authorization: Bearer <key>` or `api-key: <key>`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from sogni_intelligence.api.state import server_of
from sogni_intelligence.errors import ServiceError
from sogni_intelligence.store.keys import KeyInfo, KeyStore


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    api_key = request.headers.get("api-key", "").strip()
    return api_key or None


async def require_key(request: Request) -> KeyInfo:
    key = presented_key(request)
    if key is None:
        raise ServiceError(
            "Missing API key: send 'Authorization: Bearer <key>' or 'api-key: <key>'.",
            401,
            "authentication_error",
            "missing_api_key",
        )
    store: KeyStore = server_of(request).keys
    info = await store.check(key)
    if info is None:
        raise ServiceError("Invalid API key.", 401, "authentication_error", "invalid_api_key")
    return info


CurrentKey = Annotated[KeyInfo, Depends(require_key)]
