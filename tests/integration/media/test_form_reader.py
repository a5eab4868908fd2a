"""The streaming multipart reader of `POST /v1/media`, fed in every chunk size."""

from __future__ import annotations

import os

import pytest

from sogni_intelligence.api.media.serving import FormFileReader, form_boundary
from sogni_intelligence.errors import ServiceError

BOUNDARY = "----sogni-boundary-42"


def _form(parts: list[tuple[str, bytes]], preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    out = [preamble]
    for name, content in parts:
        out.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
        )
        out.append(content + b"\r\n")
    out.append(f"--{BOUNDARY}--\r\n".encode() + epilogue)
    return b"".join(out)


def _read(body: bytes, chunk: int) -> tuple[bytes, bool]:
    reader = FormFileReader(BOUNDARY, "file")
    got = b"".join(b"".join(reader.feed(body[i : i + chunk])) for i in range(0, len(body), chunk))
    return got, reader.found


# content that nearly contains the delimiter, in several ways
TRICKY = b"\r\n--" + BOUNDARY[:-1].encode() + b"x\r\n\r\n--\r\n" + os.urandom(3000) + b"\r\n-"


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 31, 64, 1000, 1 << 20])
def test_file_field_comes_out_byte_exact(chunk: int) -> None:
    body = _form(
        [("note", b"first field " * 10), ("file", TRICKY), ("after", b"ignored")],
        preamble=b"a preamble line\r\n",
        epilogue=b"an epilogue",
    )
    assert _read(body, chunk) == (TRICKY, True)


def test_empty_file_field_and_missing_field() -> None:
    assert _read(_form([("file", b"")]), 5) == (b"", True)
    assert _read(_form([("other", b"x")]), 5) == (b"", False)
    assert _read(_form([("file", b"abc")])[:-20], 5)[1] is False  # truncated body


def test_only_the_first_file_field_is_taken() -> None:
    assert _read(_form([("file", b"one"), ("file", b"two")]), 4) == (b"one", True)


def test_boundary_parsing() -> None:
    assert form_boundary(f"multipart/form-data; boundary={BOUNDARY}") == BOUNDARY
    assert form_boundary('multipart/form-data; boundary="a b"') == "a b"
    assert form_boundary("image/png") is None
    assert form_boundary("") is None
    with pytest.raises(ServiceError):
        form_boundary("multipart/form-data")
    with pytest.raises(ServiceError):
        form_boundary("multipart/form-data; boundary=" + "x" * 71)


def test_endless_part_headers_are_refused() -> None:
    reader = FormFileReader(BOUNDARY, "file")
    reader.feed(f"--{BOUNDARY}\r\n".encode())
    with pytest.raises(ServiceError):
        for _ in range(100):
            reader.feed(b"X-Padding: " + b"a" * 1000)
