"""Redaction of RunRecords before they are stored: whatever a client sends, the server takes
out secrets and personal data again, so a replay record can be shared for debugging.

Removed: API keys and bearer tokens, values of secret-named fields, the signatures and
credentials of signed URLs, the payload of data URIs, and e-mail addresses.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MARK = "[redacted]"
_SECRET_FIELD = re.compile(
    r"^(api[-_]?key|authorization|password|passwd|secret|client[-_]?secret|"
    r"(access|refresh|id|auth|session)?[-_]?token|cookie|set[-_]?cookie|private[-_]?key)$",
    re.IGNORECASE,
)
_KEY = re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_\-]{16,}")
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]{8,}", re.IGNORECASE)
_DATA_URI = re.compile(r"data:([\w.+/-]*)((?:;[\w=.+-]+)*),[A-Za-z0-9+/=%_\-\s]+")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_URL = re.compile(r"https?://[^\s\"'<>]+")
_SIGNED_PARAMS = frozenset(
    {
        "sig",
        "signature",
        "token",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "x-goog-signature",
        "x-goog-credential",
        "se",
        "sp",
        "sv",
        "key",
        "api_key",
        "apikey",
    }
)


def _url(match: re.Match[str]) -> str:
    """The URL with the values of its signature and credential parameters replaced."""
    url = match.group(0)
    parts = urlsplit(url)
    if not parts.query:
        return url
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if not any(name.lower() in _SIGNED_PARAMS for name, _ in pairs):
        return url
    cleaned = [(n, MARK if n.lower() in _SIGNED_PARAMS else v) for n, v in pairs]
    return urlunsplit(parts._replace(query=urlencode(cleaned, safe="[]")))


def redact_text(text: str) -> str:
    text = _DATA_URI.sub(lambda m: f"data:{m.group(1)}{m.group(2)},{MARK}", text)
    text = _URL.sub(_url, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MARK}", text)
    text = _KEY.sub(MARK, text)
    return _EMAIL.sub("[email]", text)


def redact(value: Any) -> Any:
    """A copy of a JSON value with every secret and personal datum taken out."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, dict):
        return {
            key: MARK
            if isinstance(key, str) and _SECRET_FIELD.match(key) and value[key] not in (None, "")
            else redact(item)
            for key, item in value.items()
        }
    return value
