"""The analysis tools asking a vision-capable upstream LLM (real HTTP to the fake upstream)."""

from __future__ import annotations

from pathlib import Path

from fake_upstream import FakeUpstream
from tests.integration.tools.conftest import upload_image

from sogni_intelligence.config import ModelConfig, Settings
from sogni_intelligence.llm.registry import ModelRegistry
from sogni_intelligence.media.signing import UrlSigner
from sogni_intelligence.media.store import AssetStore
from sogni_intelligence.store.db import Database
from sogni_intelligence.tools.analysis_tools import TOOLS
from sogni_intelligence.tools.base import ToolContext, execute
from sogni_intelligence.tools.media_context import MediaContext
from sogni_intelligence.tools.services import build_tool_services, vision_llm

ANALYZE_IMAGE = next(tool for tool in TOOLS if tool.name == "analyze_image")


def _settings(tmp_path: Path, url: str, vision: bool) -> Settings:
    model = ModelConfig(
        id="eyes", engine="upstream", base_url=url, upstream_model="chunks-3", vision=vision
    )
    return Settings(data_dir=tmp_path, models=[model], default_model="eyes")


async def test_analyze_image_asks_the_vision_model(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'v.sqlite'}")
    await db.create_all()
    store = AssetStore(db, tmp_path / "media", UrlSigner(b"k" * 32, "http://media.test", 60))
    ctx = ToolContext(owner="key_v", media=MediaContext(), store=store)
    registry = ModelRegistry(_settings(tmp_path, fake_upstream.url, vision=True))
    ctx.services = build_tool_services(_settings(tmp_path, fake_upstream.url, True), registry)
    await upload_image(ctx)
    result = await execute(ANALYZE_IMAGE, {"query": "What is in the picture?"}, ctx)
    await registry.close()
    await db.close()
    assert result["ok"], result
    assert result["answer"] == "w0 w1 w2" and result["computed"] is False
    content = fake_upstream.last.body["messages"][0]["content"]
    assert "What is in the picture?" in content[0]["text"]
    assert content[1]["image_url"]["url"].startswith("data:image/")


async def test_no_vision_model_means_no_service(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    registry = ModelRegistry(_settings(tmp_path, fake_upstream.url, vision=False))
    assert vision_llm(registry) is None
    services = build_tool_services(_settings(tmp_path, fake_upstream.url, False), registry)
    assert services.vision_llm is None and services.image_backends == {}
    await registry.close()
