"""LoRA files: the catalog of `.safetensors` files in each image backend's `lora_dirs`, the
lookup an image backend loads a LoRA through (catalog ids and a key's personal ones), and the
import of a personal LoRA from a URL.

A catalog LoRA's id is its file name without `.safetensors`. Ids are matched against a strict
pattern (no separators, no leading dot) and only regular files directly inside a configured
folder are used, so an id can never name a path elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import stat
import struct
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sogni_intelligence.config import ImageBackendConfig
from sogni_intelligence.errors import ServiceError, invalid_request
from sogni_intelligence.media.fetch import FetchPolicy, fetch_file
from sogni_intelligence.media.store import AssetStore
from sogni_intelligence.store.personal_loras import (
    PERSONAL_PREFIX,
    LoraLibraryFull,
    NewLora,
    PersonalLoraStore,
    StoredLora,
    is_personal_id,
)

LORA_SUFFIX = ".safetensors"
SAFETENSORS_MIME = "application/x-safetensors"
#: The asset kind a personal LoRA's file is stored under (it is not media).
LORA_KIND = "lora"
LORA_ID_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.+ -]{0,127}"
_LORA_ID = re.compile(LORA_ID_PATTERN)
#: The safetensors format caps its JSON header at 100 MB.
_MAX_HEADER_BYTES = 100_000_000


@dataclass(frozen=True)
class LoraFile:
    """One catalog LoRA as found on disk, with the public image model ids that can load it."""

    lora_id: str
    path: Path
    size_bytes: int
    modified_at: float
    model_ids: tuple[str, ...]


def is_lora_id(value: str) -> bool:
    return _LORA_ID.fullmatch(value) is not None


def model_ids_of(backend: ImageBackendConfig) -> tuple[str, ...]:
    """The public model ids a backend answers: its aliases, or its name when it has none."""
    return tuple(backend.aliases) or (backend.name,)


def _serves(backend: ImageBackendConfig, model_id: str) -> bool:
    return model_id == backend.name or model_id in backend.aliases


def _files_in(folder: Path) -> Iterator[tuple[str, Path, os.stat_result]]:
    """(id, path, stat) of each LoRA file directly inside `folder` (a missing folder has none)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        lora_id = entry.name.removesuffix(LORA_SUFFIX)
        if lora_id == entry.name or not is_lora_id(lora_id):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            yield lora_id, Path(entry.path), info


def scan_catalog(backends: Iterable[ImageBackendConfig]) -> list[LoraFile]:
    """Every catalog LoRA, sorted by id; an id found for several backends lists all their
    model ids (each backend loads its own file, see `find_lora`)."""
    found: dict[str, LoraFile] = {}
    for backend in backends:
        models = model_ids_of(backend)
        for folder in backend.lora_dirs:
            for lora_id, path, info in _files_in(folder):
                known = found.get(lora_id)
                if known is None:
                    found[lora_id] = LoraFile(lora_id, path, info.st_size, info.st_mtime, models)
                else:
                    merged = tuple(dict.fromkeys((*known.model_ids, *models)))
                    found[lora_id] = replace(known, model_ids=merged)
    return [found[key] for key in sorted(found)]


def lora_in_dirs(folders: Iterable[Path], lora_id: str) -> Path | None:
    """The first regular file `<lora_id>.safetensors` directly inside one of `folders`; None
    for an unknown or unsafe id."""
    if not is_lora_id(lora_id):
        return None
    for folder in folders:
        candidate = folder / f"{lora_id}{LORA_SUFFIX}"
        try:
            info = os.lstat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            return candidate
    return None


def find_lora(backends: Iterable[ImageBackendConfig], model_id: str, lora_id: str) -> Path | None:
    """The file of catalog LoRA `lora_id` for image model `model_id` (a backend's name or one
    of its aliases), from that backend's `lora_dirs`."""
    for backend in backends:
        if _serves(backend, model_id):
            found = lora_in_dirs(backend.lora_dirs, lora_id)
            if found is not None:
                return found
    return None


async def find_personal_lora(
    store: AssetStore,
    loras: PersonalLoraStore,
    owner: str,
    model_ids: Collection[str],
    lora_id: str,
) -> Path | None:
    """The local file of `owner`'s personal LoRA `lora_id`, if it was imported for one of
    `model_ids`; None for another key's, another model's or an unknown id."""
    lora = await loras.get(owner, lora_id) if is_personal_id(lora_id) else None
    if lora is None or lora.model_id not in model_ids:
        return None
    record = await store.get(lora.asset_id, owner=owner)
    if record is None:
        return None
    path = await store.local_path(record)
    return path if path.is_file() else None


async def backend_lora(
    backend: ImageBackendConfig,
    store: AssetStore,
    loras: PersonalLoraStore,
    owner: str,
    lora_id: str,
) -> Path | None:
    """The file `backend` loads for `lora_id` on `owner`'s call: a personal LoRA imported for
    any of its model ids, or a file in its `lora_dirs`."""
    if lora_id.startswith(PERSONAL_PREFIX):
        served = {backend.name, *backend.aliases}
        return await find_personal_lora(store, loras, owner, served, lora_id)
    return lora_in_dirs(backend.lora_dirs, lora_id)


async def resolve_lora(
    backends: Iterable[ImageBackendConfig],
    store: AssetStore,
    loras: PersonalLoraStore,
    owner: str,
    model_id: str,
    lora_id: str,
) -> Path | None:
    """The file to load for `lora_id` on `model_id` for `owner`: a personal LoRA (ids that
    start `personal-`) imported for that model, or a catalog one."""
    if lora_id.startswith(PERSONAL_PREFIX):
        return await find_personal_lora(store, loras, owner, (model_id,), lora_id)
    return find_lora(backends, model_id, lora_id)


# --- personal imports -------------------------------------------------------------------------


def _not_safetensors(reason: str) -> ServiceError:
    return invalid_request(
        f"the file at the URL is not a safetensors LoRA: {reason}", "url", "lora_invalid"
    )


def check_safetensors_head(head: bytes) -> None:
    """Refuse, from its first bytes, a file that cannot be safetensors (the header length,
    then a JSON object)."""
    if len(head) < 9:
        raise _not_safetensors("it is too short")
    (length,) = struct.unpack("<Q", head[:8])
    if not 2 <= length <= _MAX_HEADER_BYTES or head[8:9] != b"{":
        raise _not_safetensors("it has no safetensors header")


def check_safetensors(data: bytes) -> int:
    """Check that `data` is a whole safetensors file: a JSON header naming tensors whose byte
    ranges lie inside the file. The number of tensors."""
    check_safetensors_head(data[:64])
    (length,) = struct.unpack("<Q", data[:8])
    if 8 + length > len(data):
        raise _not_safetensors("the header is longer than the file")
    try:
        header: Any = json.loads(data[8 : 8 + length])
    except (UnicodeDecodeError, ValueError) as exc:
        raise _not_safetensors("the header is not JSON") from exc
    if not isinstance(header, dict):
        raise _not_safetensors("the header is not a JSON object")
    body = len(data) - 8 - length
    tensors = [value for key, value in header.items() if key != "__metadata__"]
    if not tensors:
        raise _not_safetensors("it holds no tensors")
    for tensor in tensors:
        offsets = tensor.get("data_offsets") if isinstance(tensor, dict) else None
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(n, int) for n in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= body
            or not isinstance(tensor.get("dtype"), str)
            or not isinstance(tensor.get("shape"), list)
        ):
            raise _not_safetensors("a tensor's entry is malformed or outside the file")
    return len(tensors)


def library_full(limit: int) -> ServiceError:
    return ServiceError(
        f"Your personal LoRA library is full ({limit} LoRAs); remove one first.",
        409,
        "invalid_request_error",
        "lora_library_full",
    )


@dataclass(frozen=True)
class LoraImport:
    """What a key asks to import: a name, the image model it is for, and where it is."""

    name: str
    model_id: str
    url: str


async def import_personal_lora(
    store: AssetStore,
    loras: PersonalLoraStore,
    policy: FetchPolicy,
    owner: str,
    wanted: LoraImport,
    limit: int,
) -> StoredLora:
    """Fetch the file through the guarded fetcher, check it is safetensors, keep it in the
    asset store and list it as the key's LoRA."""
    if await loras.count(owner) >= limit:
        raise library_full(limit)  # before fetching a file that could not be kept
    data, _ = await fetch_file(wanted.url, policy=policy, check_head=check_safetensors_head)
    tensors = check_safetensors(data)
    record = await store.put_checked_bytes(
        owner,
        data,
        mime=SAFETENSORS_MIME,
        kind=LORA_KIND,
        tool="personal_lora",
        meta={"source_url": wanted.url[:2000], "tensors": tensors},
    )
    try:
        return await loras.add(
            owner, NewLora(wanted.name, wanted.model_id, wanted.url, record.id), limit
        )
    except LoraLibraryFull:
        raise library_full(limit) from None
