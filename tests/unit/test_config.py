from pathlib import Path

import pytest
from pydantic import ValidationError

from sogni_intelligence.config import PUBLIC_MODEL_IDS, Settings
from sogni_intelligence.store.db import async_url


def test_defaults_serve_the_public_ids_from_the_embedded_model(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    (model,) = settings.models
    assert model.engine == "embedded"
    assert set(PUBLIC_MODEL_IDS) <= set(model.aliases)
    assert settings.default_model == PUBLIC_MODEL_IDS[0]
    assert settings.resolved_database_url.endswith("sogni.sqlite")


def test_environment_and_toml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "sogni.toml"
    config.write_text(
        'port = 9001\nhost = "0.0.0.0"\ndefault_model = "remote"\n'
        '[[models]]\nid = "remote"\nengine = "upstream"\nbase_url = "http://gpu:8000/v1"\n'
    )
    monkeypatch.setenv("SOGNI_CONFIG", str(config))
    monkeypatch.setenv("SOGNI_PORT", "9002")  # the environment wins over the file
    settings = Settings(data_dir=tmp_path)
    assert settings.port == 9002 and settings.host == "0.0.0.0"
    assert settings.models[0].base_url == "http://gpu:8000/v1"


def test_missing_config_file_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOGNI_CONFIG", "/nonexistent/sogni.toml")
    with pytest.raises(FileNotFoundError):
        Settings()


def test_bad_model_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="base_url"):
        Settings(data_dir=tmp_path, models=[{"id": "r", "engine": "upstream"}], default_model="r")
    with pytest.raises(ValidationError, match="twice"):
        Settings(data_dir=tmp_path, models=[{"id": "a", "aliases": ["a"]}], default_model="a")
    with pytest.raises(ValidationError, match="default_model"):
        Settings(data_dir=tmp_path, models=[{"id": "a"}], default_model="b")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgres://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg://u@h/d"),
    ],
)
def test_async_url(url: str, expected: str) -> None:
    assert async_url(url) == expected
