"""Media references from the command line: ordering, local uploads, the wire items.

The order of `media_references` decides the negative upload indices the tools see (-1 is the
first image, -1 also the first audio, …), so it is fixed by flag, not by where a flag sits on
the command line: images from `-c`, then `--ref`, then `--ref-end`, then `--keyframe`; then
audio; then video.
"""

from __future__ import annotations

import mimetypes
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel

from sogni_intelligence.agent_cli.client import ApiClient
from sogni_intelligence.agent_cli.inputs import UsageError

MediaKind = Literal["image", "video", "audio"]

#: (flag, kind, upload slot type) in the order references are sent.
FLAG_ORDER: tuple[tuple[str, MediaKind, str], ...] = (
    ("-c", "image", "contextImage"),
    ("--ref", "image", "referenceImage"),
    ("--ref-end", "image", "referenceImageEnd"),
    ("--keyframe", "image", "keyframeImage"),
    ("--ref-audio", "audio", "referenceAudio"),
    ("--ref-video", "video", "referenceVideo"),
)
MAX_CONTEXT_IMAGES = 16
#: Flags whose upload slots are numbered (`contextImage1`…, `keyframeImage1`…).
NUMBERED_SLOTS = {"-c": MAX_CONTEXT_IMAGES, "--keyframe": 8}


class RefSource(BaseModel):
    """One reference as given: a local file or an http(s) URL, and the flag it came with."""

    flag: str
    kind: MediaKind
    slot: str
    source: str

    @property
    def is_url(self) -> bool:
        return is_http_url(self.source)


class MediaReference(BaseModel):
    """A `media_references` item as the API takes it."""

    kind: MediaKind
    url: str
    flag: str
    filename: str | None = None


def is_http_url(value: str) -> bool:
    return urlsplit(value).scheme.lower() in ("http", "https") and bool(urlsplit(value).netloc)


def ordered_sources(by_flag: dict[str, Sequence[str]]) -> list[RefSource]:
    """The references in sending order; within one flag they keep the command-line order.
    `-c` and `--keyframe` images take numbered slots (`contextImage1`…`contextImage16`,
    `keyframeImage1`…)."""
    ordered: list[RefSource] = []
    for flag, kind, slot in FLAG_ORDER:
        values = list(by_flag.get(flag) or [])
        most = NUMBERED_SLOTS.get(flag)
        if most is not None and len(values) > most:
            raise UsageError(f"at most {most} {flag} images")
        for n, value in enumerate(values, start=1):
            numbered = f"{slot}{n}" if most is not None else slot
            ordered.append(RefSource(flag=flag, kind=kind, slot=numbered, source=value))
    return ordered


def content_type_of(path: Path, kind: MediaKind) -> str:
    """The MIME type of a local file, from its extension, checked against the flag's kind."""
    mime, _ = mimetypes.guess_type(path.name)
    if mime is None:
        raise UsageError(f"cannot tell the media type of {path} from its extension")
    if mime.split("/", 1)[0] != kind:
        raise UsageError(f"{path} is {mime}, but its flag takes {kind} files")
    return mime


def check_sources(sources: Sequence[RefSource]) -> None:
    """Fail before any request when a local reference is missing or of the wrong kind."""
    for ref in sources:
        if ref.is_url:
            continue
        if "://" in ref.source:
            raise UsageError(f"{ref.flag} {ref.source}: only http(s) URLs or local files")
        path = Path(ref.source).expanduser()
        if not path.is_file():
            raise UsageError(f"{ref.flag} {ref.source}: no such file")
        content_type_of(path, ref.kind)


def url_filename(url: str) -> str | None:
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return name or None


def upload_content(
    client: ApiClient, kind: MediaKind, slot_type: str, content: bytes, mime: str, job_id: str
) -> str:
    """Upload bytes through the server's presigned upload URL; its signed download URL is
    what the API then receives."""
    family = "image" if kind == "image" else "media"
    slot = {"jobId": job_id, "type": slot_type, "imageId": uuid.uuid4().hex}
    upload_url = client.data(
        "GET", f"/v1/{family}/uploadUrl", params={**slot, "contentType": mime}
    )["uploadUrl"]
    client.put_signed(upload_url, content, mime)
    return client.data("GET", f"/v1/{family}/downloadUrl", params=slot)["downloadUrl"]


def upload(client: ApiClient, ref: RefSource, job_id: str) -> str:
    """Upload one local file; its signed download URL."""
    path = Path(ref.source).expanduser()
    mime = content_type_of(path, ref.kind)
    return upload_content(client, ref.kind, ref.slot, path.read_bytes(), mime, job_id)


def resolve(
    client: ApiClient,
    sources: Sequence[RefSource],
    on_upload: Callable[[RefSource], None] = lambda ref: None,
) -> list[MediaReference]:
    """The wire items of the references, uploading the local ones first (one job id for the
    whole command, so the server can tell its uploads apart from other clients')."""
    job_id = f"sogni-agent-{uuid.uuid4().hex}"
    references = []
    for ref in sources:
        if ref.is_url:
            url, filename = ref.source, url_filename(ref.source)
        else:
            on_upload(ref)
            url, filename = upload(client, ref, job_id), Path(ref.source).name
        references.append(MediaReference(kind=ref.kind, url=url, flag=ref.flag, filename=filename))
    return references
