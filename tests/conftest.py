"""Shared fixtures: database URLs to run store tests on, and small settings builders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sogni_intelligence.config import PUBLIC_MODEL_IDS, ModelConfig, Settings

POSTGRES_URL = os.environ.get("SOGNI_TEST_POSTGRES_URL")


def embedded_settings(data_dir: Path, **model: object) -> Settings:
    """Settings with the real default model, made small enough for tests."""
    config = ModelConfig(
        id="smollm2-135m-instruct",
        aliases=list(PUBLIC_MODEL_IDS),
        **{"n_parallel": 2, "n_ctx": 4096, **model},  # type: ignore[arg-type]
    )
    return Settings(data_dir=data_dir, models=[config], key_cache_seconds=0)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on a SQLite file and on PostgreSQL (SOGNI_TEST_POSTGRES_URL)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite'}"
    if not POSTGRES_URL:
        pytest.skip("SOGNI_TEST_POSTGRES_URL is not set (make test starts a server)")
    return POSTGRES_URL
