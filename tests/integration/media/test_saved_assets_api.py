"""Saved uploads (`/v1/assets`) and LoRA catalogs (`/v1/loras/*`) in-process over a real
database and asset store, with their refusals: another key, bad signatures, oversize, wrong
type, unsafe LoRA ids and private URLs."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
import pytest_asyncio

from sogni_intelligence.api.app import create_app
from sogni_intelligence.api.state import Server
from sogni_intelligence.config import ImageBackendConfig, ModelConfig, Settings
from sogni_intelligence.media.loras import resolve_lora
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.keys import KeyStore
from sogni_intelligence.store.personal_loras import PersonalLoraStore
from tests.integration.media.conftest import Samples, make_png, serve_files
from tests.unit.test_loras import safetensors_bytes

pytestmark = pytest.mark.asyncio(loop_scope="module")

BASE = "http://assets.test"
MAX_UPLOAD = 256 * 1024
MAX_SAVED = 4


@dataclass
class Api:
    client: httpx.AsyncClient
    a: dict[str, str]
    b: dict[str, str]
    lora_dir: Path
    server: Server
    owner_a: str
    owner_b: str


def _error(response: httpx.Response, status: int) -> dict:
    """These routes answer errors in the Sogni REST shape (plus the OpenAI `error` object)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error" and body["errorCode"] == status and body["message"]
    return body


@pytest.fixture(scope="module")
def files() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A real HTTP server of LoRA (and other) files, for personal imports."""
    with serve_files() as served:
        yield served


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(
    tmp_path_factory: pytest.TempPathFactory, files: tuple[str, dict[str, bytes]]
) -> AsyncIterator[Api]:
    data: Path = tmp_path_factory.mktemp("assets-api")
    lora_dir = data / "loras"
    lora_dir.mkdir()
    (lora_dir / "pixel-art.safetensors").write_bytes(safetensors_bytes(w=np.ones((4, 4))))
    (data / "outside.safetensors").write_bytes(safetensors_bytes(w=np.ones(2)))
    settings = Settings(
        data_dir=data,
        models=[ModelConfig(id="up", engine="upstream", base_url="http://127.0.0.1:9/v1")],
        default_model="up",
        key_cache_seconds=0,
        public_base_url=BASE,
        max_upload_bytes=MAX_UPLOAD,
        saved_assets_per_key=MAX_SAVED,
        personal_loras_per_key=2,
        lora_max_bytes=64 * 1024,
        media_fetch_allow_hosts=["127.0.0.1"],
        image_backends=[
            ImageBackendConfig(
                name="sdxl-local",
                kind="openai",
                base_url="http://127.0.0.1:9",
                aliases=["sdxl", "dreamshaper-xl"],
                lora_dirs=[lora_dir],
            )
        ],
    )
    settings.ensure_data_dir()
    db = Database(settings.resolved_database_url)
    await db.create_all()
    key_a, info_a = await KeyStore(db).create("a")
    key_b, info_b = await KeyStore(db).create("b")
    await db.close()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield Api(
                client,
                {"Authorization": f"Bearer {key_a}"},
                {"x-api-key": key_b},
                lora_dir,
                app.state.server,
                info_a.id,
                info_b.id,
            )


def _local(url: str) -> str:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == BASE
    return f"{parts.path}?{parts.query}"


async def _prepare(api: Api, body: bytes, content_type: str, **extra: object) -> dict:
    sent = {
        "sha256": hashlib.sha256(body).hexdigest(),
        "bytes": len(body),
        "contentType": content_type,
        "name": "test upload",
        **extra,
    }
    response = await api.client.post("/v1/assets/prepare", json=sent, headers=api.a)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def _put(api: Api, prepared: dict, body: bytes) -> httpx.Response:
    return await api.client.put(
        _local(prepared["uploadUrl"]), content=body, headers=prepared["uploadHeaders"]
    )


# --- saved uploads ----------------------------------------------------------------------------


async def test_capabilities_state_the_limits(api: Api) -> None:
    response = await api.client.get("/v1/assets/capabilities", headers=api.a)
    data = response.json()["data"]
    assert data["enabled"] is True and data["maxBytes"] == MAX_UPLOAD
    assert "image/png" in data["contentTypes"] and data["kinds"] == ["image", "video", "audio"]
    _error(await api.client.get("/v1/assets/capabilities"), 401)


async def test_prepare_put_finalize_bind_then_download(api: Api, samples: Samples) -> None:
    prepared = await _prepare(api, samples.png, "image/png")
    assert prepared["state"] == "pending" and prepared["uploadHeaders"] == {
        "Content-Type": "image/png"
    }
    _error(await api.client.post(f"/v1/assets/{prepared['id']}/finalize", headers=api.a), 409)

    put = await _put(api, prepared, samples.png)
    assert put.status_code == 200, put.text
    assert put.json()["data"]["state"] == "uploaded"
    again = await _put(api, prepared, samples.png)
    _error(again, 412)  # write once, as the SDK expects

    finalized = await api.client.post(f"/v1/assets/{prepared['id']}/finalize", headers=api.a)
    ready = finalized.json()["data"]
    assert ready["state"] == "ready" and ready["kind"] == "image"
    assert (ready["width"], ready["height"]) == (64, 48)
    assert (await api.client.get(ready["url"])).content == samples.png

    # The same bytes again need no upload.
    same = await _prepare(api, samples.png, "image/png")
    assert same["id"] == prepared["id"] and same["state"] == "ready" and not same.get("uploadUrl")

    bound = await api.client.post(
        f"/v1/assets/{prepared['id']}/bind",
        json={"projectId": "proj-1", "type": "startingImage"},
        headers=api.a,
    )
    assert bound.status_code == 200, bound.text
    download = await api.client.get(
        "/v1/image/downloadUrl", params={"jobId": "proj-1", "type": "startingImage"}, headers=api.a
    )
    assert download.status_code == 200, download.text
    fetched = await api.client.get(download.json()["data"]["downloadUrl"])
    assert fetched.content == samples.png

    _error(
        await api.client.post(
            f"/v1/assets/{prepared['id']}/bind",
            json={"projectId": "proj-1", "type": "referenceAudio"},
            headers=api.a,
        ),
        400,
    )  # an image into an audio slot
    listed = (await api.client.get("/v1/assets", headers=api.a)).json()["data"]
    assert prepared["id"] in [a["id"] for a in listed["assets"]]
    assert listed["limits"]["maxAssets"] == MAX_SAVED


async def test_another_key_sees_none_of_it(api: Api, samples: Samples) -> None:
    prepared = await _prepare(api, make_png(color="navy"), "image/png")
    sid = prepared["id"]
    for method, path in [
        ("POST", f"/v1/assets/{sid}/finalize"),
        ("POST", f"/v1/assets/{sid}/bind"),
        ("DELETE", f"/v1/assets/{sid}"),
    ]:
        body = {"projectId": "p", "type": "startingImage"} if path.endswith("bind") else None
        _error(await api.client.request(method, path, json=body, headers=api.b), 404)
    others = (await api.client.get("/v1/assets", headers=api.b)).json()["data"]["assets"]
    assert sid not in [a["id"] for a in others]
    deleted = await api.client.delete(f"/v1/assets/{sid}", headers=api.a)
    assert deleted.status_code == 200 and deleted.json()["data"]["deleted"] is True
    _error(await api.client.delete(f"/v1/assets/{sid}", headers=api.a), 404)


async def test_puts_that_are_refused(api: Api, samples: Samples) -> None:
    png = make_png(color="olive")
    prepared = await _prepare(api, png, "image/png")
    path = _local(prepared["uploadUrl"])
    headers = prepared["uploadHeaders"]
    forged = path.replace("sig=", "sig=0")
    _error(await api.client.put(forged, content=png, headers=headers), 403)
    _error(await api.client.put(path.split("?")[0], content=png, headers=headers), 403)
    other = path.replace(prepared["id"], "sav_" + "0" * 24)
    _error(await api.client.put(other, content=png, headers=headers), 403)  # signed for another
    wrong_header = await api.client.put(path, content=png, headers={"Content-Type": "image/jpeg"})
    assert _error(wrong_header, 400)["error"]["code"] == "content_type_mismatch"
    wav_bytes = samples.wav[: len(png)].ljust(len(png), b"\0")
    assert _error(await _put(api, prepared, wav_bytes), 400)["error"]["code"] == (
        "content_type_mismatch"
    )  # the bytes are audio
    _error(await _put(api, prepared, png + b"extra"), 413)  # more than declared
    corrupt = png[:40] + b"\0" * (len(png) - 40)
    _error(await _put(api, prepared, corrupt), 400)  # a PNG that does not decode
    # None of that was kept: the real bytes still go in.
    assert (await _put(api, prepared, png)).status_code == 200


async def test_finalize_refuses_bytes_that_differ_from_the_declaration(api: Api) -> None:
    png = make_png(color="maroon")
    prepared = await _prepare(api, png, "image/png", sha256="0" * 64)
    assert (await _put(api, prepared, png)).status_code == 200
    refused = await api.client.post(f"/v1/assets/{prepared['id']}/finalize", headers=api.a)
    assert "sha256" in _error(refused, 400)["message"]
    # The mismatching bytes were forgotten: the same URL takes them again, still refused.
    assert (await _put(api, prepared, png)).status_code == 200
    _error(await api.client.post(f"/v1/assets/{prepared['id']}/finalize", headers=api.a), 400)
    _error(
        await api.client.post(
            f"/v1/assets/{prepared['id']}/bind",
            json={"projectId": "p", "type": "startingImage"},
            headers=api.a,
        ),
        409,
    )
    await api.client.delete(f"/v1/assets/{prepared['id']}", headers=api.a)


async def test_a_sha256_given_at_finalize_is_checked_too(api: Api) -> None:
    png = make_png(color="teal")
    response = await api.client.post(
        "/v1/assets/prepare",
        json={"bytes": len(png), "contentType": "image/png"},  # no sha256 here
        headers=api.a,
    )
    prepared = response.json()["data"]
    finalize = f"/v1/assets/{prepared['id']}/finalize"
    assert (await _put(api, prepared, png)).status_code == 200
    _error(await api.client.post(finalize, json={"sha256": "1" * 64}, headers=api.a), 400)
    assert (await _put(api, prepared, png)).status_code == 200
    right = hashlib.sha256(png).hexdigest().upper()
    ready = await api.client.post(finalize, json={"sha256": right}, headers=api.a)
    assert ready.status_code == 200, ready.text
    assert ready.json()["data"]["sha256"] == right.lower()
    await api.client.delete(f"/v1/assets/{prepared['id']}", headers=api.a)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"bytes": MAX_UPLOAD + 1, "contentType": "image/png"}, 413),
        ({"bytes": 10, "contentType": "application/pdf"}, 400),
        ({"bytes": 0, "contentType": "image/png"}, 400),
        ({"bytes": 10, "contentType": "image/png", "sha256": "nothex"}, 400),
        ({"contentType": "image/png"}, 400),
        ({"bytes": 10, "contentType": "image/png", "name": "nul\x00name"}, 400),
    ],
)
async def test_prepare_refusals(api: Api, body: dict, status: int) -> None:
    _error(await api.client.post("/v1/assets/prepare", json=body, headers=api.a), status)


async def test_the_library_limit_is_a_409_and_pages_walk_it(api: Api) -> None:
    made = []
    while True:
        body = make_png(color=(len(made) * 40 % 255, 10, 10))
        response = await api.client.post(
            "/v1/assets/prepare",
            json={"bytes": len(body), "contentType": "image/png"},
            headers=api.b,
        )
        if response.status_code != 200:
            break
        made.append(response.json()["data"]["id"])
    assert len(made) == MAX_SAVED
    assert _error(response, 409)["message"].startswith("Your saved upload library is full.")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"after": cursor} if cursor else {})}
        page = (await api.client.get("/v1/assets", params=params, headers=api.b)).json()["data"]
        seen += [a["id"] for a in page["assets"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))
    _error(await api.client.get("/v1/assets", params={"limit": 0}, headers=api.b), 400)
    _error(await api.client.get("/v1/assets", params={"after": "x\x00"}, headers=api.b), 400)


# --- LoRAs ------------------------------------------------------------------------------------


async def test_comfy_catalog_lists_the_folder_per_model(api: Api) -> None:
    response = await api.client.get("/v1/loras/comfy", params={"modelId": "sdxl"}, headers=api.a)
    data = response.json()["data"]
    assert [lora["loraId"] for lora in data["loras"]] == ["pixel-art"]
    assert data["loras"][0]["modelIds"] == ["sdxl", "dreamshaper-xl"]
    assert data["loras"][0]["source"] == "catalog" and data["loras"][0]["defaultStrength"] == 1.0
    assert data["models"] == ["dreamshaper-xl", "sdxl"]
    assert data["constraints"]["maxPerRequest"] == 8 and data["lastUpdated"] > 0
    other = await api.client.get("/v1/loras/comfy", params={"modelId": "z-turbo"}, headers=api.a)
    assert other.json()["data"]["loras"] == []
    _error(await api.client.get("/v1/loras/comfy"), 401)


async def test_personal_import_list_lookup_and_delete(
    api: Api, files: tuple[str, dict[str, bytes]]
) -> None:
    url, served = files
    weights = safetensors_bytes(down=np.ones((8, 4)), up=np.ones((4, 8)))
    served["/ink.safetensors"] = weights
    body = {
        "url": f"{url}/ink.safetensors",
        "name": "Ink wash",
        "modelId": "sdxl",
        "rightsConfirmed": True,
    }
    created = await api.client.post("/v1/loras/personal", json=body, headers=api.a)
    assert created.status_code == 201, created.text
    lora = created.json()["data"]
    assert lora["id"].startswith("personal-") and lora["status"] == "ready"
    assert lora["bytes"] == len(weights) and lora["sha256"] == hashlib.sha256(weights).hexdigest()

    catalog = (await api.client.get("/v1/loras/personal/catalog", headers=api.a)).json()["data"]
    assert [x["loraId"] for x in catalog["loras"]] == [lora["id"]]
    listed = (await api.client.get("/v1/loras/personal", headers=api.a)).json()["data"]
    assert listed["limits"]["used"] == 1 and "sdxl" in listed["models"]
    got = await api.client.get(f"/v1/loras/personal/{lora['id']}", headers=api.a)
    assert got.json()["data"]["name"] == "Ink wash"

    server = api.server
    backends = server.settings.image_backends

    async def lookup(owner: str, model_id: str, lora_id: str) -> Path | None:
        personal = PersonalLoraStore(server.db)
        return await resolve_lora(backends, server.assets, personal, owner, model_id, lora_id)

    path = await lookup(api.owner_a, "sdxl", lora["id"])
    assert path is not None and path.read_bytes() == weights
    assert await lookup(api.owner_b, "sdxl", lora["id"]) is None  # another key's
    assert await lookup(api.owner_a, "dreamshaper-xl", lora["id"]) is None  # another model's
    catalog_file = await lookup(api.owner_b, "dreamshaper-xl", "pixel-art")
    assert catalog_file == api.lora_dir / "pixel-art.safetensors"
    assert await lookup(api.owner_a, "sdxl", "../outside") is None

    _error(await api.client.get(f"/v1/loras/personal/{lora['id']}", headers=api.b), 404)
    _error(await api.client.delete(f"/v1/loras/personal/{lora['id']}", headers=api.b), 404)
    theirs = (await api.client.get("/v1/loras/personal/catalog", headers=api.b)).json()["data"]
    assert theirs["loras"] == []

    deleted = await api.client.delete(f"/v1/loras/personal/{lora['id']}", headers=api.a)
    assert deleted.status_code == 200
    _error(await api.client.get(f"/v1/loras/personal/{lora['id']}", headers=api.a), 404)


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/ok.safetensors", {"rightsConfirmed": False}, 400, None),
        ("/ok.safetensors", {"modelId": "z-turbo"}, 400, None),
        ("/ok.safetensors", {"name": "nul\x00name"}, 400, None),
        ("/ok.safetensors", {"name": "   "}, 400, None),
        ("/image.png", {}, 400, "lora_invalid"),
        ("/big.safetensors", {}, 413, "media_too_large"),
        ("/missing.safetensors", {}, 400, "media_fetch_failed"),
    ],
)
async def test_personal_import_refusals(
    api: Api,
    files: tuple[str, dict[str, bytes]],
    samples: Samples,
    path: str,
    body: dict,
    status: int,
    code: str | None,
) -> None:
    url, served = files
    served["/ok.safetensors"] = safetensors_bytes(w=np.ones(4))
    served["/image.png"] = samples.png
    served["/big.safetensors"] = safetensors_bytes(w=np.ones(32 * 1024))
    sent = {"url": url + path, "name": "x", "modelId": "sdxl", "rightsConfirmed": True, **body}
    refused = _error(await api.client.post("/v1/loras/personal", json=sent, headers=api.a), status)
    if code is not None:
        assert refused["error"]["code"] == code
    assert (await api.client.get("/v1/loras/personal", headers=api.a)).json()["data"]["loras"] == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/lora.safetensors",
        "http://10.1.2.3/lora.safetensors",
        "http://[::1]:8080/lora.safetensors",
        "file:///etc/passwd",
    ],
)
async def test_personal_import_from_a_private_address_is_refused(api: Api, url: str) -> None:
    sent = {"url": url, "name": "x", "modelId": "sdxl", "rightsConfirmed": True}
    _error(await api.client.post("/v1/loras/personal", json=sent, headers=api.a), 400)


@pytest.mark.parametrize(
    "lora_id",
    ["..%2F..%2Fetc%2Fpasswd", "personal-nope", "%2e%2e", "a%2F..%2F..%2Fb", "personal-%00"],
)
async def test_unknown_or_unsafe_personal_ids_are_404(api: Api, lora_id: str) -> None:
    _error(await api.client.get(f"/v1/loras/personal/{lora_id}", headers=api.a), 404)
