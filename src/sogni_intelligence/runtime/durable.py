"""The DBOS engine under the durable records: one per process, on a SQLite file by default
or on the PostgreSQL server of the application database."""

from __future__ import annotations

from pathlib import Path

from dbos import DBOS

from sogni_intelligence import __version__

APP_NAME = "sogni-intelligence"


def system_database_url(database_url: str, data_dir: Path) -> str:
    """DBOS's own tables: next to ours on PostgreSQL, in their own SQLite file otherwise."""
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql://" + database_url[len(prefix) :]
    if database_url.startswith("postgresql://"):
        return database_url
    return f"sqlite:///{data_dir / 'dbos.sqlite'}"


def launch(database_url: str, data_dir: Path, executor_id: str = "local") -> None:
    """Start DBOS; it recovers the workflows this executor left unfinished. A fixed application
    version lets a restarted process (even after an upgrade) pick them up."""
    DBOS(
        config={
            "name": APP_NAME,
            "system_database_url": system_database_url(database_url, data_dir),
            "application_version": __version__,
            "executor_id": executor_id,
            "log_level": "WARNING",
        }
    )
    DBOS.launch()


def shutdown() -> None:
    DBOS.destroy(destroy_registry=False)
