"""Saved uploads and personal LoRAs on SQLite and PostgreSQL: write-once state moves, keyset
pages newest first, per-key limits and owners kept apart."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from sogni_intelligence.store.db import Database
from sogni_intelligence.store.personal_loras import LoraLibraryFull, NewLora, PersonalLoraStore
from sogni_intelligence.store.saved_assets import Declared, LibraryFull, SavedAssetStore

SHA = "ab" * 32


def owner(name: str) -> str:
    """A key id of this run only (the PostgreSQL database outlives a run)."""
    return f"{name}_{secrets.token_hex(4)}"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.create_all()
    yield database
    await database.close()


def declared(name: str = "photo", sha256: str | None = SHA) -> Declared:
    return Declared(name, "image/png", 1234, sha256)


async def test_an_upload_moves_pending_uploaded_ready_once(db: Database) -> None:
    saved = SavedAssetStore(db)
    key_a, key_b = owner("a"), owner("b")
    upload = await saved.declare(key_a, declared(), limit=10)
    assert upload.state == "pending" and upload.asset_id is None
    assert await saved.find_ready(key_a, SHA, "image/png") is None
    assert not await saved.mark_ready(upload.id)  # nothing uploaded yet
    assert await saved.attach(upload.id, "ast_1")
    assert not await saved.attach(upload.id, "ast_2")  # write once
    assert await saved.reject(upload.id)  # the bytes did not match: send again
    assert await saved.attach(upload.id, "ast_3")
    assert await saved.mark_ready(upload.id)
    ready = await saved.get(upload.id, key_a)
    assert ready is not None and ready.state == "ready" and ready.asset_id == "ast_3"
    found = await saved.find_ready(key_a, SHA, "image/png")
    assert found is not None and found.id == upload.id
    assert await saved.find_ready(key_b, SHA, "image/png") is None


async def test_owners_are_apart_and_the_limit_holds(db: Database) -> None:
    saved = SavedAssetStore(db)
    key_lim, key_other = owner("lim"), owner("other")
    mine = await saved.declare(key_lim, declared(), limit=2)
    await saved.declare(key_lim, declared(), limit=2)
    with pytest.raises(LibraryFull):
        await saved.declare(key_lim, declared(), limit=2)
    assert await saved.count(key_lim) == 2
    assert await saved.get(mine.id, key_other) is None
    assert not await saved.delete(mine.id, key_other)
    assert await saved.delete(mine.id, key_lim)
    assert await saved.get(mine.id) is None
    await saved.declare(key_lim, declared(), limit=2)  # room again


async def test_pages_are_newest_first_without_gaps_or_repeats(db: Database) -> None:
    saved = SavedAssetStore(db)
    key_page, key_noise = owner("page"), owner("noise")
    made = []
    for n in range(5):
        made.append(await saved.declare(key_page, declared(f"n{n}", None), limit=10))
        await asyncio.sleep(0.002)
    await saved.declare(key_noise, declared(), limit=10)
    first = await saved.page(key_page, 2, None)
    second = await saved.page(key_page, 2, first[-1].id)
    third = await saved.page(key_page, 2, second[-1].id)
    names = [u.name for u in first + second + third]
    assert names == ["n4", "n3", "n2", "n1", "n0"]
    assert await saved.page(key_noise, 5, made[0].id) == []  # another key's cursor


async def test_personal_loras_are_per_key_and_limited(db: Database) -> None:
    loras = PersonalLoraStore(db)
    key_l, key_m = owner("l"), owner("m")
    lora = NewLora("Ink", "sdxl", "https://example.com/ink.safetensors", "ast_x")
    kept = await loras.add(key_l, lora, limit=1)
    assert kept.id.startswith("personal-") and kept.model_id == "sdxl"
    with pytest.raises(LoraLibraryFull):
        await loras.add(key_l, lora, limit=1)
    assert await loras.count(key_l) == 1
    assert [x.id for x in await loras.list(key_l)] == [kept.id]
    assert await loras.get(key_m, kept.id) is None and await loras.list(key_m) == []
    assert not await loras.delete(key_m, kept.id)
    assert await loras.delete(key_l, kept.id)
    assert await loras.get(key_l, kept.id) is None
