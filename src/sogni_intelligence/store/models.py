"""Table definitions shared by every store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class ApiKey(Base):
    """An API key; only its SHA-256 digest is stored, so a leaked database leaks no keys."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    digest: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class KeyPolicy(Base):
    """A key's role and limits. A table of its own (not columns of `api_keys`) so that a
    database made before roles existed gains it without a migration; a key without a row is
    a `user` without limits."""

    __tablename__ = "key_policies"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), default="user")
    requests_per_minute: Mapped[int | None] = mapped_column(Integer, default=None)
    tokens_per_minute: Mapped[int | None] = mapped_column(Integer, default=None)
    concurrent_records: Mapped[int | None] = mapped_column(Integer, default=None)
    daily_capacity_units: Mapped[float | None] = mapped_column(Float, default=None)


class KeyUsage(Base):
    """What a key used in one window: requests and tokens per minute, capacity units per UTC
    day. `window` is the window's length in seconds, `start` its Unix start time."""

    __tablename__ = "key_usage"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    window: Mapped[int] = mapped_column(Integer, primary_key=True)
    start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    units: Mapped[float] = mapped_column(Float, default=0.0)


class Asset(Base):
    """One media file a key owns. Bytes live content-addressed on disk (`sha256`), so the same
    bytes stored twice take the space once."""

    __tablename__ = "assets"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(32), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    mime: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int | None] = mapped_column(Integer, default=None)
    height: Mapped[int | None] = mapped_column(Integer, default=None)
    duration_s: Mapped[float | None] = mapped_column(Float, default=None)
    fps: Mapped[float | None] = mapped_column(Float, default=None)
    tool: Mapped[str | None] = mapped_column(String(64), default=None)
    backend: Mapped[str | None] = mapped_column(String(64), default=None)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UploadSlot(Base):
    """An upload URL handed out by `GET /v1/{image,media}/uploadUrl`, keyed the way clients
    ask for the matching download URL (job, slot type, image id)."""

    __tablename__ = "upload_slots"
    __table_args__ = (UniqueConstraint("owner", "job_id", "slot_type", "image_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(32), index=True)
    job_id: Mapped[str] = mapped_column(String(128))
    slot_type: Mapped[str] = mapped_column(String(64))
    image_id: Mapped[str] = mapped_column(String(128), default="")
    asset_id: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SavedAsset(Base):
    """A key's saved upload (`/v1/assets`): declared by `prepare`, uploaded with a signed PUT
    (the bytes become the store asset `asset_id`), made reusable by `finalize`."""

    __tablename__ = "saved_assets"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    content_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    asset_id: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class PersonalLora(Base):
    """A LoRA file a key imported from a URL, kept as the store asset `asset_id`, for one
    image model."""

    __tablename__ = "personal_loras"

    id: Mapped[str] = mapped_column(String(48), primary_key=True)
    owner: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(200))
    model_id: Mapped[str] = mapped_column(String(128))
    source_url: Mapped[str] = mapped_column(String(8192))
    asset_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DurableRecord(Base):
    """A durable workflow or chat run. Fields that filters need are columns; the rest of the
    record (input, steps, artifacts, waiting, recovery...) is one JSON document."""

    __tablename__ = "durable_records"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(24), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Bumped by every write: updates are compare-and-set on it, so two writers never lose
    # each other's changes (SQLite's driver reads outside the write transaction).
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RecordEvent(Base):
    """One entry of a record's append-only event log. `sequence` is gap-free per record;
    `dedupe_key` makes an event written by a repeated step land only once."""

    __tablename__ = "record_events"
    __table_args__ = (
        UniqueConstraint("record_id", "sequence"),
        UniqueConstraint("record_id", "dedupe_key"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(40), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(48))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dedupe_key: Mapped[str | None] = mapped_column(String(160), default=None)


class ReplayRecord(Base):
    """A RunRecord kept for replay viewers and audits: one per (owner, run id), written by a
    client or by a chat run as it finishes. `record` is stored redacted."""

    __tablename__ = "replay_records"

    owner: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    schema_version: Mapped[str] = mapped_column(String(32), default="1")
    model_id: Mapped[str | None] = mapped_column(String(128), default=None)
    user_request: Mapped[str | None] = mapped_column(String(4096), default=None)
    rounds: Mapped[int] = mapped_column(Integer, default=0)
    record: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class IdempotencyKey(Base):
    """`Idempotency-Key` of a start request, scoped per owner and endpoint."""

    __tablename__ = "idempotency_keys"

    owner: Mapped[str] = mapped_column(String(32), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    body_sha256: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WorkflowTemplate(Base):
    """A saved workflow template, whole in `data` (its wire form); the other columns are what
    lookups and listings filter and sort on."""

    __tablename__ = "workflow_templates"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(32), index=True)
    visibility: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProcessBeat(Base):
    """The last sign of life of a process sharing this database (an API replica or a worker),
    under its DBOS executor id: what a supervisor reads to find dead ones."""

    __tablename__ = "process_beats"

    executor_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    queues: Mapped[list[str]] = mapped_column(JSON, default=list)
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    beat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Lease(Base):
    """A named role that one process holds until `expires_at` unless it renews it."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SavedResponse(Base):
    """A response of `POST /v1/responses` kept for retrieval and `previous_response_id`: the
    response object (or, for a background one, its fixed fields and the chat run it runs as),
    its input items and the conversation before them, whole in `data`."""

    __tablename__ = "saved_responses"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(32), index=True)
    run_id: Mapped[str | None] = mapped_column(String(40), default=None)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
