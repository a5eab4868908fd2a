"""The shared in-process model holder: load once, one folder per process, out of memory drops."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from sogni_intelligence.config import LocalModelConfig
from sogni_intelligence.errors import ToolError
from sogni_intelligence.media.local_model import Stopped, local_model, set_memory_budget


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


def _sized_loader(megabytes: int, loads: list[str]) -> Any:
    """A loader whose model holds `megabytes` of float32 parameters."""

    def loader(torch: Any, path: Path, device: str, dtype: Any) -> Any:
        loads.append(path.name)
        return torch.nn.Linear(megabytes * 2**18, 1, bias=False)

    return loader


async def test_the_memory_budget_unloads_the_least_recently_used_idle_model(
    tmp_path: Path,
) -> None:
    loads: list[str] = []
    models = {}
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        models[name] = local_model(
            "budget test", LocalModelConfig(path=tmp_path / name), _sized_loader(4, loads)
        )
    set_memory_budget(9)  # room for two 4 MB models, not three
    try:
        await models["a"].run(lambda m: m)
        await models["b"].run(lambda m: m)
        assert models["a"].loaded_bytes == 4 * 2**20
        await models["a"].run(lambda m: m)  # a is now the most recently used
        await models["c"].run(lambda m: m)
        assert [n for n, m in models.items() if m.is_loaded] == ["a", "c"]
        assert loads == ["a", "b", "c"]
        await models["b"].run(lambda m: m)  # loads again, pushing out a (older than c)
        assert [n for n, m in models.items() if m.is_loaded] == ["b", "c"]
        assert loads == ["a", "b", "c", "b"]
    finally:
        set_memory_budget(None)


async def test_cancelling_a_stoppable_job_stops_it_at_its_next_check(tmp_path: Path) -> None:
    model = local_model("stoppable test", LocalModelConfig(path=tmp_path), lambda *a: 0)
    steps: list[int] = []
    started = threading.Event()

    def job(loaded: int, stop: threading.Event) -> int:
        for step in range(10_000):
            started.set()
            if stop.is_set():
                raise Stopped
            steps.append(step)
            time.sleep(0.001)
        return len(steps)

    task = asyncio.ensure_future(model.run_stoppable(job))
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    count = len(steps)  # the thread has ended when the cancel is seen: nothing moves after it
    await asyncio.sleep(0.05)
    assert len(steps) == count < 10_000
    assert await model.run(lambda loaded: loaded) == 0  # the model is free for the next job
