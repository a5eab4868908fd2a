"""Route of the account summary."""

from __future__ import annotations

from fastapi import APIRouter

from sogni_intelligence.api.auth import CurrentKey

router = APIRouter()


@router.get("/v1/account/me")
async def account_me(key: CurrentKey) -> dict[str, object]:
    return {
        "status": "success",
        "data": {
            "account": {
                "id": key.id,
                "name": key.name or key.id,
                "apiKeyFingerprint": key.fingerprint,
                "createdAt": key.created_at.isoformat(),
                "role": key.role,
            }
        },
    }
