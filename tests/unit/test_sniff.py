import pytest

from sogni_intelligence.media.sniff import sniff


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 8, "image/png"),
        (b"\xff\xd8\xff\xe0\0\x10JFIF", "image/jpeg"),
        (b"RIFF\0\0\0\0WEBPVP8 ", "image/webp"),
        (b"GIF89a\x01\0", "image/gif"),
        (b"\0\0\0\x18ftypmp42\0\0\0\0", "video/mp4"),
        (b"\0\0\0\x14ftypqt  \0\0\0\0", "video/quicktime"),
        (
            b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82\x84webm",
            "video/webm",
        ),
        (b"RIFF\0\0\0\0WAVEfmt ", "audio/wav"),
        (b"fLaC\0\0\0\x22", "audio/flac"),
        (b"OggS\0\x02", "audio/ogg"),
        (b"ID3\x04\0\0", "audio/mpeg"),
        (b"\xff\xfb\x90\x64", "audio/mpeg"),
    ],
)
def test_known_formats(head: bytes, mime: str) -> None:
    found = sniff(head)
    assert found is not None and found.mime == mime


@pytest.mark.parametrize("head", [b"", b"hello world", b"%PDF-1.7", b"<svg xmlns=", b"PK\x03\x04"])
def test_everything_else_is_refused(head: bytes) -> None:
    assert sniff(head) is None
