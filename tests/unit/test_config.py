from pathlib import Path

import pytest
from pydantic import ValidationError

from sogni_intelligence.config import PUBLIC_MODEL_IDS, ModelConfig, Settings
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


POOL_TOML = """
default_model = "qwen"

[[models]]
id = "qwen"
engine = "upstream"
base_url = "http://gpu-1:8000/v1"
upstream_model = "Qwen/Qwen3.5-35B-A3B"
api_key = "sk-1"
weight = 2
health_interval_s = 3

[[models.upstreams]]
base_url = "http://gpu-2:8000/v1"

[[models.upstreams]]
base_url = "https://llm.example.com/v1"
api_key = "sk-3"
model = "qwen3.5"
weight = 0.5
"""


def test_a_pool_of_upstreams_from_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "sogni.toml"
    config.write_text(POOL_TOML)
    monkeypatch.setenv("SOGNI_CONFIG", str(config))

    (model,) = Settings(data_dir=tmp_path).models

    assert model.health_interval_s == 3
    assert [
        (u.base_url, u.api_key, model.upstream_model_of(u), u.weight) for u in model.pool_upstreams
    ] == [
        ("http://gpu-1:8000/v1", "sk-1", "Qwen/Qwen3.5-35B-A3B", 2.0),
        ("http://gpu-2:8000/v1", None, "Qwen/Qwen3.5-35B-A3B", 1.0),
        ("https://llm.example.com/v1", "sk-3", "qwen3.5", 0.5),
    ]


def test_an_embedded_model_may_share_its_requests_with_upstreams() -> None:
    model = ModelConfig(id="m", upstreams=[{"base_url": "http://gpu:8000/v1"}])

    assert [u.base_url for u in model.pool_upstreams] == ["http://gpu:8000/v1"]
    assert model.upstream_model_of(model.upstreams[0]) == "m"
    # An embedded model alone has no upstream, whatever base_url says.
    assert ModelConfig(id="m", base_url="http://gpu:8000/v1").pool_upstreams == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"engine": "upstream"}, "needs base_url or upstreams"),
        ({"engine": "upstream", "base_url": "gpu:8000/v1"}, "not an http"),
        ({"upstreams": [{"base_url": "ftp://gpu/v1"}]}, "not an http"),
        ({"upstreams": [{"base_url": "http://gpu/v1", "weight": 0}]}, "greater than 0"),
        ({"upstreams": [{"base_url": "http://gpu/v1", "key": "x"}]}, "Extra inputs"),
        ({"upstreams": [{"url": "http://gpu/v1"}]}, "base_url"),
        (
            {"upstreams": [{"base_url": "http://gpu/v1"}, {"base_url": "http://gpu/v1/"}]},
            "listed twice",
        ),
        (
            {
                "engine": "upstream",
                "base_url": "http://gpu/v1",
                "upstream_model": "a",
                "upstreams": [{"base_url": "http://gpu/v1", "model": "a"}],
            },
            "listed twice",
        ),
        ({"upstreams": [{"base_url": "http://gpu/v1"}], "unhealthy_after": 0}, "unhealthy_after"),
    ],
)
def test_bad_pool_settings_are_refused(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ModelConfig(id="m", **fields)


def test_one_server_may_serve_two_models_of_a_pool() -> None:
    model = ModelConfig(
        id="m",
        engine="upstream",
        upstreams=[
            {"base_url": "http://gpu/v1", "model": "a"},
            {"base_url": "http://gpu/v1", "model": "b"},
        ],
    )
    assert [model.upstream_model_of(u) for u in model.pool_upstreams] == ["a", "b"]


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


def test_one_device_for_every_local_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = {
        "segmentation_model": {"path": str(tmp_path), "device": "cpu"},
        "music_model": {"path": str(tmp_path)},
        "image_backends": [
            {"name": "sd", "kind": "diffusers", "model_path": str(tmp_path)},
            {"name": "remote", "kind": "openai", "base_url": "http://gpu:1/v1"},
        ],
    }
    plain = Settings(data_dir=tmp_path, **models)
    assert plain.segmentation_model is not None and plain.segmentation_model.device == "cpu"
    monkeypatch.setenv("SOGNI_MODEL_DEVICE", "cuda:1")
    settings = Settings(data_dir=tmp_path, **models)
    assert settings.segmentation_model is not None and settings.music_model is not None
    assert settings.segmentation_model.device == settings.music_model.device == "cuda:1"
    assert [b.device for b in settings.image_backends] == ["cuda:1", "cpu"]
    with pytest.raises(ValidationError, match="model_device"):
        Settings(data_dir=tmp_path, model_device="gpu0")


def test_worker_device_flag_reaches_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from sogni_intelligence.cli import main as cli

    seen: list[Settings] = []

    async def fake_run_worker(settings: Settings, queues: list[str], executor_id: str) -> None:
        seen.append(settings)

    monkeypatch.setattr("sogni_intelligence.runtime.worker.run_worker", fake_run_worker)
    assert cli.main(["worker", "--queues", "video", "--device", "cuda:0"]) == 0
    assert seen[0].model_device == "cuda:0"
    assert cli.main(["worker", "--device", "gpu0"]) == 2 and len(seen) == 1
