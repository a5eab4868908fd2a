"""What every in-process torch model shares: it is loaded once per process from a local folder
(never from a hub), runs one job at a time in a worker thread, and a job that runs out of
device memory drops the model so the memory comes back and the next job loads it afresh.

torch comes with an optional extra and is imported only when a model first loads, so the base
install works without it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from sogni_intelligence.config import LocalModelConfig
from sogni_intelligence.errors import ToolError

Loaded = TypeVar("Loaded")
Result = TypeVar("Result")

#: (torch, folder, device, dtype) -> the loaded model and whatever runs it.
Loader = Callable[[Any, Path, str, Any], Loaded]

EXTRA_HINT = "pip install 'sogni-intelligence[diffusers]'"


def is_out_of_memory(exc: BaseException) -> bool:
    """torch reports device memory exhaustion as its own error type or as a RuntimeError."""
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def import_torch(what: str) -> Any:
    try:
        import torch
    except ImportError as exc:
        raise ToolError(
            "MODEL_UNAVAILABLE", f"{what} needs torch, which is not installed ({EXTRA_HINT})"
        ) from exc
    return torch


class LocalModel(Generic[Loaded]):
    """One model folder on one device and dtype, loaded on first use."""

    def __init__(self, what: str, config: LocalModelConfig, loader: Loader[Loaded]) -> None:
        self.what = what
        self.path = Path(config.path).expanduser()
        self.device = config.device
        self.dtype = config.dtype
        self._loader = loader
        self._loaded: Loaded | None = None
        self._load_lock = threading.Lock()
        # One job at a time: a model on a GPU is sized for one batch, not several at once. A
        # thread lock, because the instance outlives event loops (it is shared per process).
        self._run_lock = threading.Lock()

    def _get(self) -> Loaded:
        with self._load_lock:
            if self._loaded is None:
                if not self.path.is_dir():
                    raise ToolError(
                        "MODEL_UNAVAILABLE", f"{self.what}: the model folder {self.path} is missing"
                    )
                torch = import_torch(self.what)
                try:
                    self._loaded = self._loader(
                        torch, self.path, self.device, getattr(torch, self.dtype)
                    )
                except (OSError, ValueError, RuntimeError, TypeError, KeyError) as exc:
                    raise ToolError(
                        "MODEL_UNAVAILABLE", f"{self.what} could not load {self.path}: {exc}"
                    ) from exc
            return self._loaded

    def drop(self) -> None:
        """Forget the loaded model (its memory is freed once no job holds it)."""
        with self._load_lock:
            self._loaded = None

    async def run(self, job: Callable[[Loaded], Result]) -> Result:
        """Run `job` on the loaded model in a worker thread; out of memory is GPU_WORKER_FAILED."""
        return await asyncio.to_thread(self._run_locked, job)

    def _run_locked(self, job: Callable[[Loaded], Result]) -> Result:
        with self._run_lock:
            loaded = self._get()
            try:
                return job(loaded)
            except ToolError:
                raise
            except (RuntimeError, ValueError, TypeError, MemoryError) as exc:
                if is_out_of_memory(exc) or isinstance(exc, MemoryError):
                    self.drop()
                    raise ToolError(
                        "GPU_WORKER_FAILED",
                        f"{self.what} ran out of memory on {self.device}; the model was unloaded "
                        "and loads again on the next call",
                        retryable=True,
                    ) from exc
                raise ToolError(
                    "GPU_WORKER_FAILED", f"{self.what} failed: {exc}", retryable=True
                ) from exc


_CACHE: dict[tuple[str, str, str, str], LocalModel[Any]] = {}
_CACHE_LOCK = threading.Lock()


def local_model(what: str, config: LocalModelConfig, loader: Loader[Loaded]) -> LocalModel[Loaded]:
    """The process's one instance for this folder, device and dtype, so that several servers
    or service sets in one process share the loaded weights."""
    key = (what, str(Path(config.path).expanduser().resolve()), config.device, config.dtype)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = LocalModel(what, config, loader)
        return _CACHE[key]
