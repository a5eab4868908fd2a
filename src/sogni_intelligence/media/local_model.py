"""What every in-process torch model shares: it is loaded once per process from a local folder
(never from a hub), runs one job at a time in a worker thread, and a job that runs out of
device memory drops the model so the memory comes back and the next job loads it afresh.

Loaded models share one memory budget per process (`model_memory_budget_mb`): before a model
loads, the least recently used idle ones are unloaded until its weights fit, so a worker that
serves several tools on one GPU keeps the models it uses most and never holds them all.

torch comes with an optional extra and is imported only when a model first loads, so the base
install works without it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Generic, TypeVar

from sogni_intelligence.config import LocalModelConfig
from sogni_intelligence.errors import ToolError

Loaded = TypeVar("Loaded")
Result = TypeVar("Result")

#: (torch, folder, device, dtype) -> the loaded model and whatever runs it.
Loader = Callable[[Any, Path, str, Any], Loaded]

EXTRA_HINT = "pip install 'sogni-intelligence[diffusers]'"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".gguf")

log = logging.getLogger(__name__)


class Stopped(Exception):
    """Raised inside a job (e.g. from a per-step callback) whose caller went away."""


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


def weights_on_disk(folder: Path) -> int:
    """The bytes of the weight files under `folder`: what loading it will roughly take."""
    return sum(
        path.stat().st_size
        for path in folder.rglob("*")
        if path.suffix in WEIGHT_SUFFIXES and path.is_file()
    )


def footprint(loaded: Any) -> int:
    """Bytes held by the torch modules inside `loaded`: the object itself, a pipeline's
    components, or the fields of whatever tuple or object the loader returned."""
    seen: set[int] = set()
    total = 0

    def candidates(value: Any) -> Iterable[Any]:
        yield value
        components = getattr(value, "components", None)
        if isinstance(components, dict):
            yield from components.values()
        if isinstance(value, (tuple, list)):
            yield from value
        elif hasattr(value, "__dict__") and not hasattr(value, "parameters"):
            yield from vars(value).values()

    for candidate in candidates(loaded):
        if id(candidate) in seen or not hasattr(candidate, "parameters"):
            continue
        seen.add(id(candidate))
        try:
            tensors = [*candidate.parameters(), *candidate.buffers()]
        except (TypeError, AttributeError):
            continue
        total += sum(t.numel() * t.element_size() for t in tensors)
    return total


class LocalModel(Generic[Loaded]):
    """One model folder on one device and dtype, loaded on first use."""

    def __init__(self, what: str, config: LocalModelConfig, loader: Loader[Loaded]) -> None:
        self.what = what
        self.path = Path(config.path).expanduser()
        self.device = config.device
        self.dtype = config.dtype
        self._loader = loader
        self._loaded: Loaded | None = None
        self.loaded_bytes = 0
        self.last_used = 0.0
        self.busy = False
        self._load_lock = threading.Lock()
        # One job at a time: a model on a GPU is sized for one batch, not several at once. A
        # thread lock, because the instance outlives event loops (it is shared per process).
        self._run_lock = threading.Lock()

    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

    def _get(self) -> Loaded:
        with self._load_lock:
            if self._loaded is None:
                if not self.path.is_dir():
                    raise ToolError(
                        "MODEL_UNAVAILABLE", f"{self.what}: the model folder {self.path} is missing"
                    )
                torch = import_torch(self.what)
                BUDGET.make_room(self, weights_on_disk(self.path))
                try:
                    self._loaded = self._loader(
                        torch, self.path, self.device, getattr(torch, self.dtype)
                    )
                except (OSError, ValueError, RuntimeError, TypeError, KeyError) as exc:
                    raise ToolError(
                        "MODEL_UNAVAILABLE", f"{self.what} could not load {self.path}: {exc}"
                    ) from exc
                self.loaded_bytes = footprint(self._loaded)
                # The folder's size was an estimate (weights may be cast or shared on load).
                BUDGET.make_room(self, self.loaded_bytes)
            return self._loaded

    def drop(self) -> None:
        """Forget the loaded model (its memory is freed once no job holds it)."""
        with self._load_lock:
            self._loaded = None
            self.loaded_bytes = 0

    async def run(self, job: Callable[[Loaded], Result]) -> Result:
        """Run `job` on the loaded model in a worker thread; out of memory is GPU_WORKER_FAILED."""
        return await asyncio.to_thread(self._run_locked, job)

    async def run_stoppable(self, job: Callable[[Loaded, threading.Event], Result]) -> Result:
        """Like `run`, for long jobs that check a stop flag (e.g. in a per-step callback) and
        raise `Stopped`: cancelling the caller sets the flag and waits for the thread to end,
        so no thread goes on using the model after its caller is gone."""
        stop = threading.Event()
        worker = asyncio.ensure_future(self.run(lambda loaded: job(loaded, stop)))
        try:
            return await asyncio.shield(worker)
        except asyncio.CancelledError:
            stop.set()
            await asyncio.wait([worker])
            if not worker.cancelled():
                worker.exception()  # retrieved, so asyncio does not log it as never retrieved
            raise

    def _run_locked(self, job: Callable[[Loaded], Result]) -> Result:
        with self._run_lock:
            self.busy = True
            try:
                loaded = self._get()
                return job(loaded)
            except (ToolError, Stopped):
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
            finally:
                self.busy = False
                self.last_used = time.monotonic()


class MemoryBudget:
    """The process's loaded models share `limit` bytes; idle ones go least recently used first."""

    def __init__(self) -> None:
        self.limit: int | None = None
        self._lock = threading.Lock()

    def make_room(self, loading: LocalModel[Any], needed: int) -> None:
        if self.limit is None:
            return
        with self._lock:
            others = [m for m in _CACHE.values() if m is not loading and m.is_loaded]
            held = sum(m.loaded_bytes for m in others)
            for model in sorted(others, key=lambda m: m.last_used):
                if held + needed <= self.limit:
                    break
                if model.busy:
                    continue
                log.info(
                    "unloading %s (%d MB) to make room for %s",
                    model.what,
                    model.loaded_bytes // 2**20,
                    loading.what,
                )
                held -= model.loaded_bytes
                model.drop()
                _release_device_cache()
            if held + needed > self.limit:
                log.warning(
                    "loading %s (%d MB) goes over the model memory budget (%d MB): the models "
                    "still loaded are busy",
                    loading.what,
                    needed // 2**20,
                    self.limit // 2**20,
                )


def _release_device_cache() -> None:
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


BUDGET = MemoryBudget()

_CACHE: dict[tuple[str, str, str, str], LocalModel[Any]] = {}
_CACHE_LOCK = threading.Lock()


def set_memory_budget(megabytes: int | None) -> None:
    """Set the process's budget for loaded models (None: no limit)."""
    BUDGET.limit = None if megabytes is None else megabytes * 2**20


def local_model(what: str, config: LocalModelConfig, loader: Loader[Loaded]) -> LocalModel[Loaded]:
    """The process's one instance for this folder, device and dtype, so that several servers
    or service sets in one process share the loaded weights."""
    key = (what, str(Path(config.path).expanduser().resolve()), config.device, config.dtype)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = LocalModel(what, config, loader)
        return _CACHE[key]
