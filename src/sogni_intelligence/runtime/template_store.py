"""The workflow template store (spec §2.5, §11 ownership): templates per key in the database,
checked against the tool catalog before they are stored. The model, its validation and the
compiler are `tools.templates`."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import AliasChoices
from pydantic.alias_generators import to_camel
from sqlalchemy import or_, select

from sogni_intelligence.errors import ServiceError, invalid_request
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.models import WorkflowTemplate as TemplateRow
from sogni_intelligence.store.models import utcnow
from sogni_intelligence.tools.catalog import CATALOG
from sogni_intelligence.tools.template_checks import check_template
from sogni_intelligence.tools.template_model import WorkflowTemplate, parse_template

MAX_TEMPLATE_BYTES = 256 * 1024
MAX_LIST_LIMIT = 200


def _not_found(template_id: str) -> ServiceError:
    return ServiceError(
        f"No workflow template {template_id!r}.", 404, "not_found_error", "not_found"
    )


def _checked(template: WorkflowTemplate) -> dict[str, Any]:
    check_template(template, CATALOG)
    data = template.dump()
    if len(json.dumps(data)) > MAX_TEMPLATE_BYTES:
        raise invalid_request(
            f"A workflow template may take at most {MAX_TEMPLATE_BYTES // 1024} KiB as JSON.",
            "template",
            "template_too_large",
        )
    return data


_SERVER_FIELDS = ("id", "version", "author", "createdAt", "updatedAt")


def _client_fields(data: Any) -> dict[str, Any]:
    """The fields a client may set, in their stored spelling; nulls mean "unset"."""
    if not isinstance(data, Mapping):
        raise invalid_request("A workflow template must be a JSON object.", "template")
    fields: dict[str, Any] = {}
    for key, value in data.items():
        canonical = _canonical_key(str(key))
        if canonical is not None and canonical not in _SERVER_FIELDS:
            fields[canonical] = value
    return fields


def _canonical_key(key: str) -> str | None:
    """The stored (camelCase) name of a template field given in either spelling."""
    for name, field in WorkflowTemplate.model_fields.items():
        alias = field.serialization_alias or to_camel(name)
        spellings = {name, alias, to_camel(name)}
        if isinstance(field.validation_alias, AliasChoices):
            spellings.update(str(choice) for choice in field.validation_alias.choices)
        if key in spellings:
            return alias
    return None


def _author(owner: str, given: Any) -> dict[str, Any]:
    author: dict[str, Any] = {"userId": owner}
    if isinstance(given, Mapping):
        name = given.get("displayName", given.get("display_name"))
        if isinstance(name, str) and name:
            author["displayName"] = name[:200]
    return author


_last_moment = utcnow()


def _moment() -> datetime:
    """Now, strictly after the previous call in this process, so listings that sort by creation
    time keep the order templates were made in even within one clock tick."""
    global _last_moment
    _last_moment = max(utcnow(), _last_moment + timedelta(microseconds=1))
    return _last_moment


class TemplateStore:
    """Templates per API key. A key reads its own and every public template; only the owner
    changes or deletes one. Stored whole as JSON, with the columns the listing filters on."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def _insert(self, owner: str, fields: dict[str, Any], author: Any) -> dict[str, Any]:
        now = _moment()
        template_id = "tpl_" + secrets.token_hex(12)
        fields = {key: value for key, value in fields.items() if value is not None}
        fields.update(
            id=template_id,
            version=1,
            author=_author(owner, author),
            createdAt=now.isoformat(),
            updatedAt=now.isoformat(),
        )
        data = _checked(parse_template(fields))
        row = TemplateRow(
            id=template_id,
            owner=owner,
            visibility=data["visibility"],
            name=data["name"][:200],
            data=data,
            created_at=now,
            updated_at=now,
        )
        async with self._db.transaction() as session:
            session.add(row)
        return data

    async def create(self, owner: str, data: Any) -> dict[str, Any]:
        """Save a new template for `owner`; the server sets id, version 1, author and times."""
        author = data.get("author") if isinstance(data, Mapping) else None
        return await self._insert(owner, _client_fields(data), author)

    async def get(self, owner: str, template_id: str) -> dict[str, Any] | None:
        """The template when `owner` owns it or it is public, else None."""
        async with self._db.session() as session:
            row = await session.get(TemplateRow, template_id)
        if row is None or (row.owner != owner and row.visibility != "public"):
            return None
        return dict(row.data)

    async def list(
        self, owner: str, visibility: str = "all", offset: int = 0, limit: int = 50
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page, newest first: `own` (the key's, private or public), `public` (everyone's
        public ones) or `all` (both). `limit` is clamped to 1..200; `next` is the offset of the
        following page, or None after the last."""
        if visibility == "own":
            where = TemplateRow.owner == owner
        elif visibility == "public":
            where = TemplateRow.visibility == "public"
        elif visibility == "all":
            where = or_(TemplateRow.owner == owner, TemplateRow.visibility == "public")
        else:
            raise invalid_request(
                "visibility must be one of own, public, all.", "visibility", "invalid_visibility"
            )
        offset = max(0, int(offset))
        limit = min(MAX_LIST_LIMIT, max(1, int(limit)))
        query = (
            select(TemplateRow)
            .where(where)
            .order_by(TemplateRow.created_at.desc(), TemplateRow.id.desc())
            .offset(offset)
            .limit(limit + 1)
        )
        async with self._db.session() as session:
            rows = list((await session.scalars(query)).all())
        more = len(rows) > limit
        page = [dict(row.data) for row in rows[:limit]]
        return page, (offset + limit if more else None)

    async def exposed(self, owner: str) -> list[dict[str, Any]]:
        """The key's own templates that ask to be offered to the model (`exposeToLLM`)."""
        query = select(TemplateRow).where(TemplateRow.owner == owner).limit(MAX_LIST_LIMIT)
        async with self._db.session() as session:
            rows = (await session.scalars(query)).all()
        return [dict(row.data) for row in rows if row.data.get("exposeToLLM")]

    async def update(self, owner: str, template_id: str, partial: Any) -> dict[str, Any]:
        """Merge `partial` (top-level fields; null unsets one) into the owner's template and
        bump its version. 404 when the key does not own it."""
        changes = _client_fields(partial)
        async with self._db.transaction() as session:
            row = await session.get(TemplateRow, template_id, with_for_update=True)
            if row is None or row.owner != owner:
                raise _not_found(template_id)
            merged = dict(row.data)
            for key, value in changes.items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            now = _moment()
            merged["version"] = int(row.data.get("version", 1)) + 1
            merged["updatedAt"] = now.isoformat()
            data = _checked(parse_template(merged))
            row.data = data
            row.visibility = data["visibility"]
            row.name = data["name"][:200]
            row.updated_at = now
        return data

    async def delete(self, owner: str, template_id: str) -> bool:
        async with self._db.transaction() as session:
            row = await session.get(TemplateRow, template_id)
            if row is None or row.owner != owner:
                return False
            await session.delete(row)
        return True

    async def fork(
        self, owner: str, template_id: str, new_name: str | None = None
    ) -> dict[str, Any]:
        """A private copy, owned by `owner`, of a template it can read (own or public). The copy
        records its origin in `metadata.forkedFrom`. 404 when the source is not readable."""
        source = await self.get(owner, template_id)
        if source is None:
            raise _not_found(template_id)
        if new_name is not None and not isinstance(new_name, str):
            raise invalid_request("newName must be a string.", "newName")
        name = new_name if new_name and new_name.strip() else f"{source['name']} (fork)"[:200]
        fields = _client_fields(source)
        metadata = dict(fields.get("metadata") or {})
        metadata["forkedFrom"] = {"id": source["id"], "version": source.get("version", 1)}
        fields.update(name=name, visibility="private", metadata=metadata)
        return await self._insert(owner, fields, None)
