"""The media routes in-process: uploads, signed and keyed downloads, Range, the upload-URL flow."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from sogni_intelligence.api.app import create_app
from sogni_intelligence.config import ModelConfig, Settings
from sogni_intelligence.media.store import AssetStore
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.keys import KeyStore
from sogni_intelligence.store.models import Asset
from tests.integration.media.conftest import Samples, make_png

pytestmark = pytest.mark.asyncio(loop_scope="module")

BASE = "http://media.test"
MAX_UPLOAD = 512 * 1024


@dataclass
class Api:
    client: httpx.AsyncClient
    store: AssetStore
    db: Database
    data_dir: Path
    a: dict[str, str]
    b: dict[str, str]

    async def upload(self, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post(
            "/v1/media", content=body, headers={**self.a, **(headers or {})}
        )

    async def asset_rows(self) -> int:
        async with self.db.session() as session:
            return int(await session.scalar(select(func.count()).select_from(Asset)) or 0)

    def blobs(self) -> list[Path]:
        return sorted(p for p in (self.data_dir / "media" / "blobs").rglob("*") if p.is_file())

    def scratch(self) -> list[Path]:
        return list((self.data_dir / "media" / "tmp").iterdir())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    data: Path = tmp_path_factory.mktemp("media-api")
    settings = Settings(
        data_dir=data,
        models=[ModelConfig(id="up", engine="upstream", base_url="http://127.0.0.1:9/v1")],
        default_model="up",
        key_cache_seconds=0,
        public_base_url=BASE,
        max_upload_bytes=MAX_UPLOAD,
    )
    settings.ensure_data_dir()
    db = Database(settings.resolved_database_url)
    await db.create_all()
    key_a, _ = await KeyStore(db).create("a")
    key_b, _ = await KeyStore(db).create("b")
    await db.close()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield Api(
                client,
                app.state.server.assets,
                app.state.server.db,
                data,
                {"Authorization": f"Bearer {key_a}"},
                {"api-key": key_b},
            )


def _shape_a(response: httpx.Response, status: int) -> dict:
    """Media routes answer errors as {"status":"error","message","errorCode"} (plus `error`)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error"
    assert body["errorCode"] == status
    assert isinstance(body["message"], str) and body["message"]
    assert body["error"]["message"] == body["message"]
    return body


def _path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


# --- direct upload and download ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mime", "kind"),
    [("png", "image/png", "image"), ("wav", "audio/wav", "audio"), ("mp4", "video/mp4", "video")],
)
async def test_upload_then_download_is_byte_exact(
    api: Api, samples: Samples, name: str, mime: str, kind: str
) -> None:
    body = getattr(samples, name)
    response = await api.upload(body, {"Content-Type": "application/octet-stream"})
    assert response.status_code == 201, response.text
    payload = response.json()
    assert payload["status"] == "success"
    asset = payload["data"]["asset"]
    assert asset["type"] == kind and asset["mime_type"] == mime
    assert asset["size_bytes"] == len(body)
    assert asset["url"].startswith(f"{BASE}/v1/media/{asset['asset_id']}?exp=")

    signed = await api.client.get(asset["url"])  # no credentials at all
    assert signed.status_code == 200
    assert signed.content == body
    assert signed.headers["content-type"] == mime
    ext = {"png": "png", "wav": "wav", "mp4": "mp4"}[name]
    assert signed.headers["content-disposition"] == f'inline; filename="{asset["asset_id"]}.{ext}"'
    cache = signed.headers["cache-control"]
    assert cache.startswith("private, max-age=") and int(cache.rsplit("=", 1)[1]) > 0
    assert signed.headers["accept-ranges"] == "bytes"

    keyed = await api.client.get(f"/v1/media/{asset['asset_id']}", headers=api.a)
    assert keyed.status_code == 200 and keyed.content == body


async def test_multipart_form_upload(api: Api, samples: Samples) -> None:
    response = await api.client.post(
        "/v1/media",
        headers=api.a,
        data={"note": "ignored field"},
        files={"file": ("photo.bin", samples.png, "application/octet-stream")},
    )
    assert response.status_code == 201, response.text
    asset = response.json()["data"]["asset"]
    assert asset["mime_type"] == "image/png"
    assert (await api.client.get(asset["url"])).content == samples.png


async def test_multipart_without_file_field_is_refused(api: Api) -> None:
    before = await api.asset_rows()
    response = await api.client.post("/v1/media", headers=api.a, files={"other": ("a", b"x")})
    _shape_a(response, 400)
    assert await api.asset_rows() == before


async def test_range_request_returns_partial_content(api: Api, samples: Samples) -> None:
    asset = (await api.upload(samples.mp4)).json()["data"]["asset"]
    total = len(samples.mp4)
    response = await api.client.get(asset["url"], headers={"Range": "bytes=10-99"})
    assert response.status_code == 206
    assert response.content == samples.mp4[10:100]
    assert response.headers["content-range"] == f"bytes 10-99/{total}"
    tail = await api.client.get(asset["url"], headers={"Range": "bytes=-16"})
    assert tail.status_code == 206 and tail.content == samples.mp4[-16:]
    outside = await api.client.get(asset["url"], headers={"Range": f"bytes={total + 10}-"})
    assert outside.status_code == 416


async def test_head_gives_headers_only(api: Api, samples: Samples) -> None:
    asset = (await api.upload(samples.png)).json()["data"]["asset"]
    response = await api.client.head(asset["url"])
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(samples.png))
    assert response.content == b""


async def test_tampered_expired_or_missing_signature_is_403(api: Api, samples: Samples) -> None:
    asset = (await api.upload(samples.png)).json()["data"]["asset"]
    path = f"/v1/media/{asset['asset_id']}"
    query = parse_qs(urlsplit(asset["url"]).query)
    exp, sig = query["exp"][0], query["sig"][0]

    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    _shape_a(await api.client.get(f"{path}?exp={exp}&sig={flipped}"), 403)
    _shape_a(await api.client.get(f"{path}?exp={int(exp) + 60}&sig={sig}"), 403)
    expired = api.store.signer.url(path, ttl_s=-5)
    _shape_a(await api.client.get(expired), 403)
    _shape_a(await api.client.get(path), 403)
    _shape_a(await api.client.get(f"{path}?exp={exp}"), 403)
    # another asset's signature does not open this one
    other = (await api.upload(make_png(color="red"))).json()["data"]["asset"]
    other_query = urlsplit(other["url"]).query
    _shape_a(await api.client.get(f"{path}?{other_query}"), 403)
    # a PUT signature for the same path is not a GET signature
    put_url = api.store.signer.url(path, method="PUT")
    _shape_a(await api.client.get(_path_and_query(put_url)), 403)


async def test_another_key_gets_404_the_owner_and_signature_get_200(
    api: Api, samples: Samples
) -> None:
    asset = (await api.upload(samples.wav)).json()["data"]["asset"]
    path = f"/v1/media/{asset['asset_id']}"
    _shape_a(await api.client.get(path, headers=api.b), 404)
    assert (await api.client.get(path, headers=api.a)).status_code == 200
    # a valid signature is enough whoever presents it
    assert (await api.client.get(asset["url"], headers=api.b)).status_code == 200
    # a wrong key is refused as a wrong key
    _shape_a(await api.client.get(path, headers={"api-key": "sk-sogni-nope"}), 401)


async def test_unknown_well_formed_id_is_404(api: Api) -> None:
    _shape_a(await api.client.get("/v1/media/ast_" + "0" * 24, headers=api.a), 404)


@pytest.mark.parametrize(
    "raw_path",
    [
        "/v1/media/..%2F..%2Fetc%2Fpasswd",
        "/v1/media/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/v1/media/%2e%2e",
        "/v1/media/ast_..%2F..%2Fsogni.sqlite",
        "/v1/media/ast_000000000000000000000000%2F..%2F..%2Furl-signing.key",
        "/v1/media/AST_000000000000000000000000",
        "/v1/media/blobs",
    ],
)
async def test_malformed_ids_are_404_without_a_lookup(
    api: Api, raw_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[str] = []

    async def spy_get(asset_id: str, owner: str | None = None) -> None:
        looked_up.append(asset_id)

    monkeypatch.setattr(api.store, "get", spy_get)
    monkeypatch.setattr(
        api.store, "local_path", lambda record: pytest.fail("local_path was called")
    )
    for headers in ({}, api.a):
        response = await api.client.get(httpx.URL(BASE + raw_path), headers=headers)
        body = _shape_a(response, 404)
        assert "root:" not in response.text and body["errorCode"] == 404
    assert looked_up == []


async def test_upload_needs_a_key(api: Api, samples: Samples) -> None:
    body = _shape_a(await api.client.post("/v1/media", content=samples.png), 401)
    assert body["error"]["type"] == "authentication_error"


# --- limits and sniffing ----------------------------------------------------------------------


async def test_upload_over_the_limit_is_413_and_nothing_is_stored(
    api: Api, samples: Samples
) -> None:
    rows, blobs = await api.asset_rows(), api.blobs()
    too_big = samples.png + b"\0" * (MAX_UPLOAD + 1 - len(samples.png))
    _shape_a(await api.upload(too_big), 413)

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: the stream is counted
        yield samples.png
        for _ in range(MAX_UPLOAD // 65536 + 2):
            yield b"\0" * 65536

    _shape_a(await api.client.post("/v1/media", content=chunked(), headers=api.a), 413)
    assert await api.asset_rows() == rows
    assert api.blobs() == blobs
    assert api.scratch() == []


async def test_type_comes_from_the_bytes_not_the_label(api: Api, samples: Samples) -> None:
    response = await api.upload(samples.png, {"Content-Type": "audio/wav"})
    assert response.status_code == 201
    asset = response.json()["data"]["asset"]
    assert asset["mime_type"] == "image/png" and asset["type"] == "image"
    assert asset["width"] == 64 and asset["height"] == 48


@pytest.mark.parametrize(
    "body",
    [
        b"hello, this is plain text and not media at all\n" * 4,
        b"\x89PNG\r\n\x1a\n" + b"this is not really a png" * 8,
        b"RIFF\x24\x00\x00\x00WAVEfmt garbage garbage garbage garbage",
        b"",
    ],
    ids=["text", "corrupt-png", "corrupt-wav", "empty"],
)
async def test_unsupported_or_corrupt_upload_is_400_and_nothing_is_stored(
    api: Api, body: bytes
) -> None:
    rows, blobs = await api.asset_rows(), api.blobs()
    _shape_a(await api.upload(body, {"Content-Type": "image/png"}), 400)
    assert await api.asset_rows() == rows
    assert api.blobs() == blobs
    assert api.scratch() == []


# --- upload URL flow --------------------------------------------------------------------------


async def _upload_url(
    api: Api, route: str, headers: dict[str, str] | None = None, **params: str
) -> httpx.Response:
    return await api.client.get(f"/v1/{route}/uploadUrl", params=params, headers=headers or api.a)


async def test_image_upload_url_flow(api: Api, samples: Samples) -> None:
    response = await _upload_url(
        api, "image", imageId="img-1", jobId="job-1", type="startingImage", contentType="image/png"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success"
    upload_url = body["data"]["uploadUrl"]
    assert upload_url.startswith(f"{BASE}/v1/uploads/upl_image_")

    put = await api.client.put(
        upload_url, content=samples.png, headers={"Content-Type": "image/png"}
    )
    assert put.status_code == 200, put.text
    assert put.json()["status"] == "success"
    asset_id = put.json()["data"]["assetId"]

    download = await api.client.get(
        "/v1/image/downloadUrl",
        params={"jobId": "job-1", "type": "startingImage", "imageId": "img-1"},
        headers=api.a,
    )
    assert download.status_code == 200, download.text
    url = download.json()["data"]["downloadUrl"]
    assert url.startswith(f"{BASE}/v1/media/{asset_id}?exp=")
    fetched = await api.client.get(url)
    assert fetched.status_code == 200 and fetched.content == samples.png

    # the asset belongs to the key that asked for the upload URL
    assert (await api.client.get(f"/v1/media/{asset_id}", headers=api.a)).status_code == 200
    _shape_a(await api.client.get(f"/v1/media/{asset_id}", headers=api.b), 404)
    # another key cannot ask for the download URL of this slot
    _shape_a(
        await api.client.get(
            "/v1/image/downloadUrl",
            params={"jobId": "job-1", "type": "startingImage", "imageId": "img-1"},
            headers=api.b,
        ),
        404,
    )


@pytest.mark.parametrize(
    ("slot", "content_type", "sample"),
    [("referenceAudio", "audio/wav", "wav"), ("referenceVideo", "video/mp4", "mp4")],
)
async def test_media_upload_url_flow(
    api: Api, samples: Samples, slot: str, content_type: str, sample: str
) -> None:
    body = getattr(samples, sample)
    response = await _upload_url(api, "media", jobId="job-m", type=slot, contentType=content_type)
    assert response.status_code == 200, response.text
    upload_url = response.json()["data"]["uploadUrl"]
    put = await api.client.put(upload_url, content=body, headers={"Content-Type": content_type})
    assert put.status_code == 200, put.text
    download = await api.client.get(
        "/v1/media/downloadUrl", params={"job_id": "job-m", "type": slot}, headers=api.a
    )
    assert download.status_code == 200, download.text
    assert (await api.client.get(download.json()["data"]["downloadUrl"])).content == body


async def test_download_url_before_any_upload_is_404(api: Api) -> None:
    await _upload_url(
        api, "image", imageId="i9", jobId="job-9", type="cnImage", contentType="image/png"
    )
    for route, params in (
        ("image", {"jobId": "job-9", "type": "cnImage", "imageId": "i9"}),
        ("media", {"jobId": "job-never", "type": "referenceAudio"}),
    ):
        response = await api.client.get(f"/v1/{route}/downloadUrl", params=params, headers=api.a)
        _shape_a(response, 404)


@pytest.mark.parametrize(
    ("route", "params", "param"),
    [
        ("image", {"jobId": "j", "type": "notAType", "contentType": "image/png"}, "type"),
        ("image", {"jobId": "j", "type": "contextImage17", "contentType": "image/png"}, "type"),
        (
            "image",
            {"jobId": "j", "type": "startingImage", "contentType": "text/html"},
            "contentType",
        ),
        (
            "image",
            {"jobId": "j", "type": "startingImage", "contentType": "audio/wav"},
            "contentType",
        ),
        ("image", {"type": "startingImage", "contentType": "image/png"}, "jobId"),
        ("image", {"jobId": "../x", "type": "startingImage", "contentType": "image/png"}, "jobId"),
        ("media", {"jobId": "j", "type": "bad type!", "contentType": "audio/wav"}, "type"),
        (
            "media",
            {"jobId": "j", "type": "referenceAudio", "contentType": "application/pdf"},
            "contentType",
        ),
        ("media", {"jobId": "j", "type": "someSlot"}, "contentType"),
    ],
)
async def test_upload_url_validation(api: Api, route: str, params: dict, param: str) -> None:
    body = _shape_a(await _upload_url(api, route, **params), 400)
    assert body["error"]["param"] == param


async def test_upload_url_accepts_every_documented_image_type(api: Api) -> None:
    types = ["startingImage", "cnImage", "referenceImage", "referenceImageEnd"]
    types += [f"contextImage{i}" for i in range(1, 17)]
    for slot in types:
        for mime in ("image/png", "image/jpeg", "image/jpg", "image/webp", "image/gif"):
            response = await _upload_url(
                api, "image", imageId="x", jobId="all", type=slot, contentType=mime
            )
            assert response.status_code == 200, (slot, mime, response.text)


async def test_upload_url_needs_a_key(api: Api) -> None:
    response = await api.client.get(
        "/v1/image/uploadUrl", params={"jobId": "j", "type": "startingImage"}
    )
    _shape_a(response, 401)


async def test_put_with_a_bad_signature_is_403(api: Api, samples: Samples) -> None:
    rows = await api.asset_rows()
    upload_url = (
        await _upload_url(
            api,
            "image",
            imageId="s",
            jobId="job-sig",
            type="referenceImage",
            contentType="image/png",
        )
    ).json()["data"]["uploadUrl"]
    parts = urlsplit(upload_url)
    query = parse_qs(parts.query)
    exp, sig = query["exp"][0], query["sig"][0]
    for bad in (
        f"{parts.path}?exp={exp}&sig={'0' * 64}",
        f"{parts.path}?exp={int(exp) + 1}&sig={sig}",
        parts.path,
        _path_and_query(api.store.signer.url(parts.path)),  # a GET signature is not a PUT one
        _path_and_query(api.store.signer.url(parts.path, method="PUT", ttl_s=-5)),  # expired
    ):
        _shape_a(await api.client.put(bad, content=samples.png), 403)
    assert await api.asset_rows() == rows
    assert api.scratch() == []


async def test_put_of_the_wrong_family_is_400_and_nothing_is_stored(
    api: Api, samples: Samples
) -> None:
    rows, blobs = await api.asset_rows(), api.blobs()
    image_slot = (
        await _upload_url(
            api,
            "image",
            imageId="f",
            jobId="job-fam",
            type="startingImage",
            contentType="image/png",
        )
    ).json()["data"]["uploadUrl"]
    audio_slot = (
        await _upload_url(
            api, "media", jobId="job-fam", type="referenceAudio", contentType="audio/wav"
        )
    ).json()["data"]["uploadUrl"]
    _shape_a(await api.client.put(image_slot, content=samples.wav), 400)
    _shape_a(await api.client.put(image_slot, content=b"just text, no image"), 400)
    _shape_a(await api.client.put(audio_slot, content=samples.png), 400)
    _shape_a(await api.client.put(audio_slot, content=samples.mp4), 400)
    assert await api.asset_rows() == rows
    assert api.blobs() == blobs
    _shape_a(
        await api.client.get(
            "/v1/image/downloadUrl",
            params={"jobId": "job-fam", "type": "startingImage", "imageId": "f"},
            headers=api.a,
        ),
        404,
    )


async def test_put_over_the_limit_is_413(api: Api, samples: Samples) -> None:
    rows = await api.asset_rows()
    slot = (
        await _upload_url(
            api,
            "image",
            imageId="big",
            jobId="job-big",
            type="startingImage",
            contentType="image/png",
        )
    ).json()["data"]["uploadUrl"]
    too_big = samples.png + b"\0" * MAX_UPLOAD
    _shape_a(await api.client.put(slot, content=too_big), 413)
    assert await api.asset_rows() == rows


async def test_a_new_upload_url_replaces_the_slot(api: Api, samples: Samples) -> None:
    params = {"imageId": "r", "jobId": "job-r", "type": "startingImage", "contentType": "image/png"}
    first = (await _upload_url(api, "image", **params)).json()["data"]["uploadUrl"]
    second = (await _upload_url(api, "image", **params)).json()["data"]["uploadUrl"]
    assert first != second
    _shape_a(await api.client.put(first, content=samples.png), 404)
    red = make_png(color="red")
    assert (await api.client.put(second, content=red)).status_code == 200
    download = await api.client.get(
        "/v1/image/downloadUrl",
        params={"jobId": "job-r", "type": "startingImage", "imageId": "r"},
        headers=api.a,
    )
    assert (await api.client.get(download.json()["data"]["downloadUrl"])).content == red


# --- v2: presigned POST forms -----------------------------------------------------------------


async def _form(api: Api, route: str, **params: str) -> dict:
    response = await api.client.get(f"/v2/{route}/uploadUrl", params=params, headers=api.a)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "success"
    return response.json()["data"]


async def test_v2_upload_form_flow(api: Api, samples: Samples) -> None:
    form = await _form(
        api, "image", imageId="img-2", jobId="job-2", type="startingImage", contentType="image/png"
    )
    assert form["url"] == f"{BASE}/v2/uploads"
    fields = form["fields"]
    assert fields["key"].startswith("upl_image_") and fields["Content-Type"] == "image/png"
    policy = json.loads(base64.b64decode(fields["policy"]))
    assert ["content-length-range", 1, MAX_UPLOAD] in policy["conditions"]
    # Fields first, then the file, as a browser or an S3 client sends a presigned form.
    posted = await api.client.post(form["url"], data=fields, files={"file": ("a.png", samples.png)})
    assert posted.status_code == 201, posted.text
    asset_id = posted.json()["data"]["assetId"]
    download = await api.client.get(
        "/v2/image/downloadUrl",
        params={"jobId": "job-2", "type": "startingImage", "imageId": "img-2"},
        headers=api.a,
    )
    assert download.status_code == 200 and download.json()["status"] == "success"
    url = download.json()["data"]["downloadUrl"]
    assert url.startswith(f"{BASE}/v1/media/{asset_id}?exp=")
    assert (await api.client.get(url)).content == samples.png
    _shape_a(await api.client.get(f"/v1/media/{asset_id}", headers=api.b), 404)


async def test_v2_upload_form_refusals(api: Api, samples: Samples) -> None:
    form = await _form(api, "media", jobId="job-3", type="referenceAudio", contentType="audio/wav")
    fields = form["fields"]
    forged = {**fields, "signature": "0" * 64}
    _shape_a(await api.client.post(form["url"], data=forged, files={"file": samples.wav}), 403)
    other_slot = {**fields, "key": fields["key"].replace("audio", "image")}
    _shape_a(await api.client.post(form["url"], data=other_slot, files={"file": samples.wav}), 403)
    # The bytes must be of the slot's kind, within the limit, and sent as a form.
    _shape_a(await api.client.post(form["url"], data=fields, files={"file": samples.png}), 400)
    big = b"RIFF" + b"\0" * (MAX_UPLOAD + 10)
    _shape_a(await api.client.post(form["url"], data=fields, files={"file": big}), 413)
    _shape_a(await api.client.post(form["url"], content=samples.wav), 400)
    missing = await api.client.post(form["url"], data=fields)
    _shape_a(missing, 400)
    assert api.scratch() == []
    ok = await api.client.post(form["url"], data=fields, files={"file": samples.wav})
    assert ok.status_code == 201, ok.text
