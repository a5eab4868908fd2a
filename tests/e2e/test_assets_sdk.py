"""Saved uploads and LoRA catalogs through the official SDK (`projects.assets`,
`projects.available_loras`, `projects.personal_loras`) against the real server process."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import pytest_asyncio
from sogni_client import SogniClient
from sogni_client.errors import ApiError

from tests.e2e.conftest import RunningServer, running_server
from tests.integration.media.conftest import make_png, serve_files
from tests.unit.test_loras import safetensors_bytes

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

MODEL = "sdxl"


@pytest.fixture(scope="module")
def files() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A real HTTP server the LoRA imports fetch from."""
    with serve_files() as served:
        yield served


@pytest.fixture(scope="module")
def lora_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data: Path = tmp_path_factory.mktemp("assets-server")
    loras = data / "loras"
    loras.mkdir()
    (loras / "pixel-art.safetensors").write_bytes(safetensors_bytes(w=np.ones((4, 4))))
    (loras / "ink.safetensors").write_bytes(safetensors_bytes(w=np.ones((2, 2))))
    backends = [
        {
            "name": "sdxl-local",
            "kind": "openai",
            "base_url": "http://127.0.0.1:9",
            "aliases": [MODEL, "dreamshaper-xl"],
            "lora_dirs": [str(loras)],
        }
    ]
    settings = {
        "SOGNI_IMAGE_BACKENDS": json.dumps(backends),
        "SOGNI_MEDIA_FETCH_ALLOW_HOSTS": json.dumps(["127.0.0.1"]),
    }
    with running_server(data, settings=settings) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def clients(lora_server: RunningServer) -> AsyncIterator[tuple[SogniClient, SogniClient]]:
    made = lora_server.cli("keys", "--json", "create", "--name", "other")
    other_key = json.loads(made.stdout)["key"]
    mine = await SogniClient.create(
        api_key=lora_server.key, rest_endpoint=lora_server.url, disable_socket=True
    )
    other = await SogniClient.create(
        api_key=other_key, rest_endpoint=lora_server.url, disable_socket=True
    )
    yield mine, other
    await mine.aclose()
    await other.aclose()


async def test_upload_reuse_bind_list_and_remove(
    clients: tuple[SogniClient, SogniClient], lora_server: RunningServer
) -> None:
    sogni, other = clients
    png = make_png((40, 30), "purple")
    saved = await sogni.projects.assets.upload(png, "image/png", "Purple square")
    assert saved["state"] == "ready" and saved["kind"] == "image"
    assert saved["sha256"] == hashlib.sha256(png).hexdigest()
    assert (saved["width"], saved["height"]) == (40, 30)
    again = await sogni.projects.assets.upload(png, "image/png", "Purple square")
    assert again["id"] == saved["id"]  # the same bytes are not sent twice

    await sogni.projects.assets.bind(saved["id"], {"projectId": "proj-e2e", "type": "cnImage"})
    url = await sogni.projects.download_url({"jobId": "proj-e2e", "type": "cnImage"})
    assert httpx.get(url, timeout=10).content == png

    # The SDK's automatic reuse: capabilities say yes, so the file is saved and bound.
    orange_png = make_png((16, 16), "orange")
    binding = {"projectId": "proj-e2e", "type": "startingImage"}
    assert await sogni.projects.assets.try_bind_file(orange_png, "image/png", binding) is True
    url = await sogni.projects.download_url({"jobId": "proj-e2e", "type": "startingImage"})
    assert httpx.get(url, timeout=10).content == orange_png

    listed = await sogni.projects.assets.list()
    assert saved["id"] in [a["id"] for a in listed["assets"]]
    assert listed["limits"]["maxBytes"] == 100 * 1024 * 1024
    assert (await other.projects.assets.list())["assets"] == []
    with pytest.raises(ApiError) as hidden:
        await other.projects.assets.bind(saved["id"], binding)
    assert hidden.value.status == 404
    with pytest.raises(ApiError) as hidden:
        await other.projects.assets.remove(saved["id"])
    assert hidden.value.status == 404

    await sogni.projects.assets.remove(saved["id"])
    assert saved["id"] not in [a["id"] for a in (await sogni.projects.assets.list())["assets"]]


async def test_a_declared_type_the_bytes_do_not_match_is_refused(
    clients: tuple[SogniClient, SogniClient],
) -> None:
    sogni, _ = clients
    with pytest.raises(ApiError) as refused:
        await sogni.projects.assets.upload(make_png(), "video/mp4", "not a video")
    assert refused.value.status == 400


async def test_catalog_and_personal_loras(
    clients: tuple[SogniClient, SogniClient], files: tuple[str, dict[str, bytes]]
) -> None:
    sogni, other = clients
    catalog = await sogni.projects.available_loras(modelId=MODEL)
    assert [lora["loraId"] for lora in catalog["loras"]] == ["ink", "pixel-art"]
    assert await sogni.projects.supports_loras(MODEL) is True
    assert await sogni.projects.supports_loras("z-turbo") is False
    assert (await sogni.projects.lora_constraints())["maxPerRequest"] == 8
    assert (await sogni.projects.get_lora("pixel-art"))["modelIds"] == [MODEL, "dreamshaper-xl"]

    url, served = files
    weights = safetensors_bytes(down=np.ones((8, 2)), up=np.zeros((2, 8)))
    served["/style.safetensors"] = weights
    imported = await sogni.projects.personal_loras.import_lora(
        {"url": f"{url}/style.safetensors", "name": "My style", "modelId": MODEL},
        rights_confirmed=True,
    )
    assert imported["status"] == "ready" and imported["bytes"] == len(weights)
    lora_id = imported["loraId"]
    assert (await sogni.projects.personal_loras.get(lora_id))["name"] == "My style"
    mine = await sogni.projects.personal_loras.catalog(modelId=MODEL)
    assert [x["loraId"] for x in mine["loras"]] == [lora_id]
    merged = await sogni.projects.available_loras(modelId=MODEL, includePersonal=True)
    assert lora_id in [x["loraId"] for x in merged["loras"]]
    assert (await sogni.projects.get_lora(lora_id))["name"] == "My style"

    assert (await other.projects.personal_loras.catalog())["loras"] == []
    with pytest.raises(ApiError) as hidden:
        await other.projects.personal_loras.get(lora_id)
    assert hidden.value.status == 404

    with pytest.raises(ApiError) as private:
        await sogni.projects.personal_loras.import_lora(
            url="http://169.254.169.254/latest/style.safetensors",
            name="metadata",
            model_id=MODEL,
            rights_confirmed=True,
        )
    assert private.value.status == 400

    await sogni.projects.personal_loras.remove(lora_id)
    assert (await sogni.projects.personal_loras.list())["loras"] == []
