"""Persistence: SQLAlchemy models and sessions on SQLite (default) or PostgreSQL."""

from sogni_intelligence.store.db import Database, async_url

__all__ = ["Database", "async_url"]
