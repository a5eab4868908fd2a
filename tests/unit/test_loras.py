"""The LoRA catalog on disk: what is listed, what an id can reach, and the safetensors check."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from sogni_intelligence.config import ImageBackendConfig
from sogni_intelligence.errors import ServiceError
from sogni_intelligence.media.loras import (
    check_safetensors,
    check_safetensors_head,
    find_lora,
    scan_catalog,
)


def safetensors_bytes(**tensors: np.ndarray) -> bytes:
    """A real safetensors file: a JSON header of dtypes, shapes and byte ranges, then the data."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    body = b""
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype=np.float32).tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(array.shape),
            "data_offsets": [len(body), len(body) + len(data)],
        }
        body += data
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def backend(name: str, folders: list[Path], aliases: list[str]) -> ImageBackendConfig:
    return ImageBackendConfig(
        name=name, kind="openai", base_url="http://127.0.0.1:9", aliases=aliases, lora_dirs=folders
    )


@pytest.fixture
def layout(tmp_path: Path) -> tuple[list[ImageBackendConfig], Path]:
    """Two backends; one folder holds a LoRA, a non-LoRA, a subfolder, a symlink and a hidden
    file; a file outside every folder is what traversal would try to reach."""
    lora_a, lora_b = tmp_path / "a", tmp_path / "b"
    lora_a.mkdir()
    lora_b.mkdir()
    weights = safetensors_bytes(down=np.ones((4, 2)), up=np.zeros((2, 4)))
    (lora_a / "pixel-art.safetensors").write_bytes(weights)
    (lora_a / "notes.txt").write_text("not a lora")
    (lora_a / ".hidden.safetensors").write_bytes(weights)
    (lora_a / "nested").mkdir()
    (lora_a / "nested" / "deep.safetensors").write_bytes(weights)
    (tmp_path / "secret.safetensors").write_bytes(weights)
    os.symlink(tmp_path / "secret.safetensors", lora_a / "linked.safetensors")
    (lora_b / "pixel-art.safetensors").write_bytes(weights)
    (lora_b / "ink wash.safetensors").write_bytes(weights)
    backends = [
        backend("sdxl-local", [lora_a, tmp_path / "missing"], ["sdxl", "dreamshaper-xl"]),
        backend("flux-local", [lora_b], []),
    ]
    return backends, tmp_path


def test_catalog_lists_regular_files_directly_inside_with_their_models(layout) -> None:
    backends, _ = layout
    catalog = {f.lora_id: f for f in scan_catalog(backends)}
    assert sorted(catalog) == ["ink wash", "pixel-art"]
    assert catalog["pixel-art"].model_ids == ("sdxl", "dreamshaper-xl", "flux-local")
    assert catalog["ink wash"].model_ids == ("flux-local",)
    assert (
        catalog["pixel-art"].size_bytes
        == (layout[1] / "a" / "pixel-art.safetensors").stat().st_size
    )


def test_find_lora_picks_the_backends_own_file(layout) -> None:
    backends, root = layout
    assert find_lora(backends, "sdxl", "pixel-art") == root / "a" / "pixel-art.safetensors"
    assert find_lora(backends, "sdxl-local", "pixel-art") == root / "a" / "pixel-art.safetensors"
    assert find_lora(backends, "flux-local", "pixel-art") == root / "b" / "pixel-art.safetensors"
    assert find_lora(backends, "flux-local", "ink wash") == root / "b" / "ink wash.safetensors"
    assert find_lora(backends, "sdxl", "ink wash") is None  # another backend's LoRA
    assert find_lora(backends, "z-turbo", "pixel-art") is None  # a model without LoRA folders


@pytest.mark.parametrize(
    "lora_id",
    [
        "../secret",
        "..%2Fsecret",
        "nested/deep",
        "nested\\deep",
        ".hidden",
        "linked",
        "notes",
        "notes.txt",
        "/etc/passwd",
        "",
        "pixel-art\x00",
        "pixel-art\n",
        "x" * 200,
    ],
)
def test_ids_never_reach_outside_the_folders(layout, lora_id: str) -> None:
    backends, _ = layout
    assert find_lora(backends, "sdxl", lora_id) is None


def test_a_real_safetensors_file_passes_and_counts_its_tensors() -> None:
    data = safetensors_bytes(a=np.ones((3, 3)), b=np.arange(6).reshape(2, 3))
    assert check_safetensors(data) == 2


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "no safetensors header"),
        (b"short", "too short"),
        (struct.pack("<Q", 10_000) + b'{"a": 1}', "longer than the file"),
        (struct.pack("<Q", 7) + b"{nope!}", "not JSON"),
        (struct.pack("<Q", 2) + b"{}", "no tensors"),
        (
            safetensors_bytes(a=np.ones((2, 2)))[:-4],  # cut short: the tensor runs past the end
            "outside the file",
        ),
    ],
)
def test_files_that_are_not_safetensors_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(ServiceError) as refused:
        check_safetensors(data)
    assert refused.value.status == 400 and reason in refused.value.message


def test_the_head_check_refuses_media_before_the_rest_is_read() -> None:
    check_safetensors_head(safetensors_bytes(a=np.ones(2))[:64])
    with pytest.raises(ServiceError):
        check_safetensors_head(b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\0" * 48)
