"""Route of the account summary."""

from __future__ import annotations

from fastapi import APIRouter

from sogni_intelligence.api.auth import CurrentKey
from sogni_intelligence.store.keys import fingerprint_of

router = APIRouter()


@router.get("/v1/account/me")
async def account_me(key: CurrentKey) -> dict[str, object]:
    return {
        "status": "success",
        "data": {
            "account": {
                "id": key.id,
                "name": key.name or key.id,
                "apiKeyFingerprint": fingerprint_of(key.id),
                "createdAt": key.created_at.isoformat(),
                "role": key.role,
            }
        },
    }
