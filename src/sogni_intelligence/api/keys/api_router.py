"""Routes of `/v1/keys`: admins list, create, change and revoke API keys. The same actions
as `sogni-intelligence keys`, for the console and for automation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sogni_intelligence.api.auth import AdminKey
from sogni_intelligence.api.errors import SogniRoute
from sogni_intelligence.api.keys.protocol import CreateKeyBody, UpdateKeyBody, key_view
from sogni_intelligence.api.state import server_of
from sogni_intelligence.errors import ServiceError
from sogni_intelligence.store.keys import KeyInfo, KeyLimits

router = APIRouter(route_class=SogniRoute, tags=["keys"])
BASE = "/v1/keys"


def _ok(data: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse({"status": "success", "data": data}, status)


def _no_such_key() -> ServiceError:
    return ServiceError("No such key.", 404, "not_found_error", "not_found")


def _not_yourself(action: str) -> ServiceError:
    """An admin cannot lock itself out with the key it is using."""
    return ServiceError(
        f"An admin key cannot {action} itself; use another admin key.",
        409,
        "invalid_request_error",
        "own_key",
    )


async def _view(request: Request, info: KeyInfo) -> dict[str, Any]:
    return key_view(info, await server_of(request).usage.used_today(info.id))


@router.get(BASE)
async def list_keys(request: Request, admin: AdminKey) -> JSONResponse:
    keys = await server_of(request).keys.list()
    return _ok({"keys": [await _view(request, info) for info in keys]})


@router.post(BASE)
async def create_key(body: CreateKeyBody, request: Request, admin: AdminKey) -> JSONResponse:
    limits = KeyLimits(**body.limits.changes()) if body.limits else KeyLimits()
    secret, info = await server_of(request).keys.create(body.name, body.role, limits)
    return _ok({"key": secret, "info": key_view(info)}, 201)


@router.get(f"{BASE}/{{key_id}}")
async def get_key(key_id: str, request: Request, admin: AdminKey) -> JSONResponse:
    info = await server_of(request).keys.get(key_id)
    if info is None:
        raise _no_such_key()
    return _ok({"key": await _view(request, info)})


@router.patch(f"{BASE}/{{key_id}}")
async def update_key(
    key_id: str, body: UpdateKeyBody, request: Request, admin: AdminKey
) -> JSONResponse:
    if key_id == admin.id and body.role == "user":
        raise _not_yourself("demote")
    info = await server_of(request).keys.update(
        key_id, body.role, body.limits.changes() if body.limits else None, name=body.name
    )
    if info is None:
        raise _no_such_key()
    return _ok({"key": await _view(request, info)})


@router.delete(f"{BASE}/{{key_id}}")
async def revoke_key(key_id: str, request: Request, admin: AdminKey) -> JSONResponse:
    if key_id == admin.id:
        raise _not_yourself("revoke")
    keys = server_of(request).keys
    if await keys.get(key_id) is None:
        raise _no_such_key()
    return _ok({"revoked": await keys.revoke(key_id)})
