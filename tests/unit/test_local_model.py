"""The shared in-process model holder: load once, one folder per process, out of memory drops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from sogni_intelligence.config import LocalModelConfig
from sogni_intelligence.errors import ToolError
from sogni_intelligence.media.local_model import local_model


async def test_loads_once_and_out_of_memory_unloads(tmp_path: Path) -> None:
    loads: list[Any] = []

    def loader(torch: Any, path: Path, device: str, dtype: Any) -> int:
        loads.append((path, device, dtype))
        return len(loads)

    config = LocalModelConfig(path=tmp_path, dtype="bfloat16")
    model = local_model("test model", config, loader)
    assert local_model("test model", config, loader) is model
    assert await model.run(lambda loaded: loaded) == 1
    assert await model.run(lambda loaded: loaded) == 1
    assert str(loads[0][2]) == "torch.bfloat16"

    def exhausted(loaded: int) -> int:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(ToolError) as caught:
        await model.run(exhausted)
    assert caught.value.error_type == "GPU_WORKER_FAILED" and caught.value.retryable
    assert "unloaded" in caught.value.message
    assert await model.run(lambda loaded: loaded) == 2  # loaded afresh


async def test_a_missing_folder_is_model_unavailable(tmp_path: Path) -> None:
    model = local_model("test model", LocalModelConfig(path=tmp_path / "gone"), lambda *a: 0)
    with pytest.raises(ToolError) as caught:
        await model.run(lambda loaded: loaded)
    assert caught.value.error_type == "MODEL_UNAVAILABLE" and "gone" in caught.value.message
