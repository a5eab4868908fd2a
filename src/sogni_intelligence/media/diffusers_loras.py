"""LoRA weights applied to a loaded diffusers pipeline for one request at a time.

A LoRA file is read into the pipeline's modules once, as a named peft adapter, and kept there:
a request switches on the adapters it names with their strengths, and switches every adapter
off again when it ends, so the next request runs the base weights. Only the most recently used
files stay loaded; older ones are deleted from the modules to bound the memory they hold.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sogni_intelligence.errors import ToolError
from sogni_intelligence.media.local_model import is_out_of_memory

#: LoRA files kept loaded per pipeline.
KEPT_ADAPTERS = 8


class LoraAdapters:
    """The adapters loaded into one pipeline's modules, by file (path, size and mtime, so a file
    replaced on disk is read again)."""

    def __init__(self, kept: int = KEPT_ADAPTERS) -> None:
        self.kept = kept
        self.files_read = 0
        self._names: OrderedDict[tuple[Path, int, int], str] = OrderedDict()

    @contextmanager
    def applied(self, pipeline: Any, files: Sequence[tuple[Path, float]]) -> Iterator[None]:
        """`files` (path, strength) active on `pipeline` inside the block, none after it."""
        if not files:
            yield
            return
        if not hasattr(pipeline, "load_lora_weights"):
            raise ToolError(
                "PARAMETER_INVALID", f"{type(pipeline).__name__} cannot take LoRA weights"
            )
        names = [self._adapter(pipeline, path) for path, _ in files]
        try:
            pipeline.enable_lora()
            pipeline.set_adapters(names, adapter_weights=[strength for _, strength in files])
            yield
        finally:
            pipeline.disable_lora()

    def _adapter(self, pipeline: Any, path: Path) -> str:
        try:
            stat = path.stat()
        except OSError as exc:
            raise ToolError("PARAMETER_INVALID", f"LoRA {path.stem}: {exc}") from exc
        key = (path, stat.st_size, stat.st_mtime_ns)
        name = self._names.get(key)
        if name is not None:
            self._names.move_to_end(key)
            return name
        name = f"lora_{self.files_read}"
        from safetensors import SafetensorError  # with the diffusers extra, like the pipeline
        from safetensors.torch import load_file

        try:
            # Read here rather than by file name: a personal LoRA's blob has no .safetensors suffix.
            pipeline.load_lora_weights(load_file(str(path)), adapter_name=name)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as exc:
            if is_out_of_memory(exc):
                raise
            self._delete(pipeline, name)
            raise ToolError(
                "PARAMETER_INVALID",
                f"LoRA {path.stem} does not fit the {type(pipeline).__name__} model: {exc}",
            ) from exc
        self.files_read += 1
        self._names[key] = name
        while len(self._names) > self.kept:
            _, oldest = self._names.popitem(last=False)
            self._delete(pipeline, oldest)
        return name

    @staticmethod
    def _delete(pipeline: Any, name: str) -> None:
        """Remove adapter `name` from the modules, if a load got far enough to add it."""
        if any(name in names for names in pipeline.get_list_adapters().values()):
            pipeline.delete_adapters(name)
