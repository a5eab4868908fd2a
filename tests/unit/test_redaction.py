"""What the server removes from a RunRecord before storing it."""

import json

from sogni_intelligence.runtime.redaction import MARK, redact

SIGNED = "https://media.example/v1/media/ast_1?exp=1893456000&sig=abcdef0123456789"
S3 = (
    "https://bucket.s3.amazonaws.com/a.png?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAEXAMPLE%2F20261204&X-Amz-Signature=deadbeefcafe"
)


def test_secrets_signatures_data_uris_and_emails_are_removed() -> None:
    record = {
        "run_id": "r1",
        "api_key": "anything at all",
        "headers": {"Authorization": "Bearer sk-sogni-abcdefghijklmnopqrstuv"},
        "user_request": "mail me at ana.lopez+art@example.co.uk with key sk-sogni-AbCdEf0123456789xyz",
        "rounds": [
            {"url": SIGNED, "note": f"see {S3} now"},
            {"image": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"},
        ],
        "token": None,
        "tokens": 42,
    }
    text = json.dumps(redact(record))
    for secret in (
        "anything at all",
        "abcdefghijklmnopqrstuv",
        "ana.lopez",
        "AbCdEf0123456789xyz",
        "abcdef0123456789",
        "deadbeefcafe",
        "AKIAEXAMPLE",
        "iVBORw0KGgo",
    ):
        assert secret not in text, secret
    cleaned = redact(record)
    assert cleaned["api_key"] == MARK and cleaned["headers"]["Authorization"] == MARK
    assert cleaned["rounds"][1]["image"] == f"data:image/png;base64,{MARK}"
    assert cleaned["rounds"][0]["url"].startswith("https://media.example/v1/media/ast_1?exp=")
    assert "[email]" in cleaned["user_request"]
    # What is not secret stays as it was: counts, null secrets, plain words.
    assert cleaned["tokens"] == 42 and cleaned["token"] is None and cleaned["run_id"] == "r1"


def test_redaction_is_stable() -> None:
    once = redact({"text": f"x {SIGNED} y", "password": "hunter2"})
    assert redact(once) == once
