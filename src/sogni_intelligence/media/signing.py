"""Signed, expiring URLs: media downloads and upload slots work without an API key, like the
presigned URLs of the hosted service, and cannot be forged or used after they expire."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path


def load_secret(path: Path) -> bytes:
    """The server's signing key, created once and kept in the data directory."""
    if path.exists():
        return path.read_bytes()
    secret = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(secret)
    return secret


class UrlSigner:
    def __init__(self, secret: bytes, base_url: str, default_ttl_s: int) -> None:
        self._secret = secret
        self.base_url = base_url.rstrip("/")
        self.default_ttl_s = default_ttl_s

    def _mac(self, method: str, path: str, expires: int) -> str:
        message = f"{method}\n{path}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def sign(self, path: str, method: str = "GET", ttl_s: int | None = None) -> tuple[int, str]:
        """The expiry (Unix time) and signature that let `method` on `path` in until then."""
        expires = int(time.time()) + (ttl_s or self.default_ttl_s)
        return expires, self._mac(method, path, expires)

    def url(self, path: str, method: str = "GET", ttl_s: int | None = None) -> str:
        expires, signature = self.sign(path, method, ttl_s)
        return f"{self.base_url}{path}?exp={expires}&sig={signature}"

    def verify(self, method: str, path: str, expires: str | None, signature: str | None) -> bool:
        if not expires or not signature or not expires.isdigit():
            return False
        if int(expires) < time.time():
            return False
        return hmac.compare_digest(self._mac(method, path, int(expires)), signature)
