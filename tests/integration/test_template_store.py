from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import delete

from sogni_intelligence.errors import ServiceError
from sogni_intelligence.runtime.template_store import TemplateStore
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.models import WorkflowTemplate as TemplateRow
from sogni_intelligence.tools.templates import compile_template

ALICE, BOB = "key_alice", "key_bob"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[TemplateStore]:
    db = Database(database_url)
    await db.create_all()
    async with db.session() as session, session.begin():
        await session.execute(delete(TemplateRow))
    yield TemplateStore(db)
    await db.close()


def body(name: str = "Portrait", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "inputs": [{"name": "brief", "type": "text", "required": True}],
        "stages": [
            {
                "type": "fixed",
                "id": "k",
                "tool": "generate_image",
                "args": {"prompt": "$inputs.brief"},
            }
        ],
        **extra,
    }


async def test_create_sets_server_fields_and_get_returns_it(store: TemplateStore) -> None:
    created = await store.create(
        ALICE, body(id="mine", version=9, author={"userId": BOB, "displayName": "Al"})
    )
    assert created["id"].startswith("tpl_") and created["id"] != "mine"
    assert created["version"] == 1 and created["author"] == {"userId": ALICE, "displayName": "Al"}
    assert created["visibility"] == "private" and created["createdAt"] == created["updatedAt"]
    assert await store.get(ALICE, created["id"]) == created
    assert await store.get(ALICE, "tpl_missing") is None
    # A stored template compiles as is.
    steps = compile_template(created, {"brief": "cat"})["steps"]
    assert steps[0]["arguments"] == {"prompt": "cat"}


async def test_invalid_template_is_400_and_not_stored(store: TemplateStore) -> None:
    with pytest.raises(ServiceError) as caught:
        await store.create(ALICE, body(name=""))
    assert caught.value.status == 400
    assert await store.list(ALICE, "own") == ([], None)


async def test_private_templates_of_another_key_are_invisible(store: TemplateStore) -> None:
    private = await store.create(ALICE, body())
    public = await store.create(ALICE, body("Shared", visibility="public"))
    assert await store.get(BOB, private["id"]) is None
    assert await store.get(BOB, public["id"]) == public
    assert await store.delete(BOB, public["id"]) is False
    with pytest.raises(ServiceError) as caught:
        await store.update(BOB, public["id"], {"name": "Hijack"})
    assert caught.value.status == 404
    with pytest.raises(ServiceError) as caught:
        await store.fork(BOB, private["id"], "Copy")
    assert caught.value.status == 404


async def test_list_filters_by_visibility_and_pages(store: TemplateStore) -> None:
    a1 = await store.create(ALICE, body("a1"))
    a2 = await store.create(ALICE, body("a2", visibility="public"))
    b1 = await store.create(BOB, body("b1", visibility="public"))
    await store.create(BOB, body("b2"))

    def names(page: list[dict[str, Any]]) -> list[str]:
        return [template["name"] for template in page]

    own, _ = await store.list(ALICE, "own")
    assert names(own) == ["a2", "a1"]
    public, _ = await store.list(ALICE, "public")
    assert names(public) == ["b1", "a2"]
    everything, more = await store.list(ALICE, "all")
    assert names(everything) == ["b1", "a2", "a1"] and more is None

    first, more = await store.list(ALICE, "all", offset=0, limit=2)
    assert names(first) == ["b1", "a2"] and more == 2
    second, more = await store.list(ALICE, "all", offset=more, limit=2)
    assert names(second) == ["a1"] and more is None
    assert {t["id"] for t in first + second} == {a1["id"], a2["id"], b1["id"]}

    with pytest.raises(ServiceError):
        await store.list(ALICE, "team")


async def test_limit_is_clamped(store: TemplateStore) -> None:
    for n in range(3):
        await store.create(ALICE, body(f"t{n}"))
    page, more = await store.list(ALICE, "own", limit=0)
    assert len(page) == 1 and more == 1
    page, more = await store.list(ALICE, "own", offset=-5, limit=10_000)
    assert len(page) == 3 and more is None


async def test_update_bumps_version_and_keeps_owner(store: TemplateStore) -> None:
    created = await store.create(ALICE, body())
    updated = await store.update(
        ALICE,
        created["id"],
        {"name": "Renamed", "visibility": "public", "expose_to_llm": True, "author": "system"},
    )
    assert updated["version"] == 2 and updated["name"] == "Renamed"
    assert updated["exposeToLLM"] is True and updated["author"] == {"userId": ALICE}
    assert updated["id"] == created["id"] and updated["createdAt"] == created["createdAt"]
    assert await store.get(BOB, created["id"]) == updated  # now public
    again = await store.update(ALICE, created["id"], {"description": "d"})
    assert again["version"] == 3 and again["name"] == "Renamed"
    # The merged template is validated; a bad patch leaves the stored one untouched.
    with pytest.raises(ServiceError) as caught:
        await store.update(ALICE, created["id"], {"stages": []})
    assert caught.value.status == 400
    assert (await store.get(ALICE, created["id"])) == again


async def test_delete(store: TemplateStore) -> None:
    created = await store.create(ALICE, body())
    assert await store.delete(ALICE, created["id"]) is True
    assert await store.delete(ALICE, created["id"]) is False
    assert await store.get(ALICE, created["id"]) is None


async def test_fork_of_a_public_template_by_another_key(store: TemplateStore) -> None:
    source = await store.create(
        ALICE, body(visibility="public", tags=["x"], metadata={"note": "hi"})
    )
    fork = await store.fork(BOB, source["id"], "Bob's copy")
    assert fork["id"] != source["id"] and fork["name"] == "Bob's copy"
    assert fork["visibility"] == "private" and fork["version"] == 1
    assert fork["author"] == {"userId": BOB} and fork["tags"] == ["x"]
    assert fork["stages"] == source["stages"] and fork["inputs"] == source["inputs"]
    assert fork["metadata"] == {"note": "hi", "forkedFrom": {"id": source["id"], "version": 1}}
    assert await store.get(ALICE, fork["id"]) is None
    own, _ = await store.list(BOB, "own")
    assert [t["id"] for t in own] == [fork["id"]]
    unnamed = await store.fork(ALICE, source["id"])
    assert unnamed["name"] == "Portrait (fork)" and unnamed["author"] == {"userId": ALICE}


COFFEE = {"type": "fixed", "id": "brew", "tool": "make_coffee", "args": {}}


async def test_stages_are_checked_at_create_patch_and_fork(
    store: TemplateStore, database_url: str
) -> None:
    with pytest.raises(ServiceError) as caught:
        await store.create(ALICE, body(stages=[COFFEE]))
    assert caught.value.status == 400 and caught.value.code == "invalid_template"
    assert caught.value.param == "stages[0].tool" and "'brew'" in caught.value.message
    assert await store.list(ALICE, "own") == ([], None)

    created = await store.create(ALICE, body(visibility="public"))
    later = {
        "type": "fixed",
        "id": "up",
        "tool": "upscale_image",
        "dependsOn": [
            {"sourceStepId": "k2", "targetArgument": "sourceImageIndex", "transform": "image_index"}
        ],
    }
    with pytest.raises(ServiceError) as caught:
        await store.update(ALICE, created["id"], {"stages": [*created["stages"], later]})
    assert caught.value.param == "stages[1].dependsOn[0].sourceStepId"
    assert await store.get(ALICE, created["id"]) == created

    # A template stored before stages were checked cannot be forked as it is.
    db = Database(database_url)
    async with db.session() as session, session.begin():
        row = await session.get(TemplateRow, created["id"])
        assert row is not None
        row.data = {**row.data, "stages": [*row.data["stages"], COFFEE]}
    await db.close()
    with pytest.raises(ServiceError) as caught:
        await store.fork(BOB, created["id"], "Copy")
    assert caught.value.param == "stages[1].tool"
    assert await store.list(BOB, "own") == ([], None)
