"""Failures as the CLI reports them: a message, a code, whether a retry may help, and a hint
that says what to do. Under `--json` this is the one object on stdout:
`{"success": false, "error", "errorCode", "retryable", "hint"}`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sogni_intelligence.agent_cli.client import ApiError

#: Exit statuses (documented in docs/sogni-agent-reference.md).
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FINISHED = 3
EXIT_INTERRUPTED = 130

#: HTTP statuses after which the same request may succeed later.
RETRYABLE_STATUSES = frozenset({408, 423, 425, 429, 500, 502, 503, 504})

START_SERVER = (
    "start the server (sogni-intelligence serve) or point --api-base-url / SOGNI_API_BASE_URL at it"
)
KEY_HINT = (
    "set SOGNI_API_KEY (or pass --api-key) to a valid key of this server; an admin makes one "
    "with: sogni-intelligence keys create --name NAME"
)
_HINTS = {
    400: "the request was refused as invalid: the message names the field to fix",
    401: f"the server refused the API key: {KEY_HINT}",
    402: "billing refused the request: check the key's budget or plan",
    403: "this key may not do that: use a key with the needed role",
    404: "no such record for this key: check the id (sogni-agent --recent lists yours)",
    409: "the request conflicts with an earlier one: a retry with the same idempotency key "
    "must send the same body, and a cost preview must be current",
    413: "the request is too large: send smaller media or fewer references",
}


@dataclass
class Failure:
    """What went wrong, for people (stderr) and for programs (`--json`)."""

    message: str
    code: str | int
    retryable: bool
    hint: str
    exit_status: int = EXIT_FAILED
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "success": False,
            "error": self.message,
            "errorCode": self.code,
            "retryable": self.retryable,
            "hint": self.hint,
            **self.extra,
        }


class CliFailure(Exception):
    """A mode that ends with a `Failure` of its own (not an error of the API)."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def api_hint(error: ApiError) -> str:
    """What to do about a failed request."""
    if error.status == 0:
        return f"nothing answered: {START_SERVER}"
    if error.status == 429:
        wait = f"{error.retry_after:g} s" if error.retry_after is not None else "a while"
        return f"rate limited: retry after {wait}"
    if error.status == 503:
        return "the server is starting or restarting: retry in a few seconds"
    if error.status >= 500:
        return "the server failed: retry, and look at the server log if it keeps failing"
    return _HINTS.get(error.status, "see the error message")


def api_failure(error: ApiError) -> Failure:
    if error.status == 0:
        code: str | int = "unreachable"
    else:
        code = error.code if error.code is not None else error.status
    retryable = error.status == 0 or error.status in RETRYABLE_STATUSES
    extra = {"retryAfter": error.retry_after} if error.retry_after is not None else {}
    return Failure(str(error), code, retryable, api_hint(error), extra=extra)


def usage_failure(message: str) -> Failure:
    hint = "see sogni-agent --help, or docs/sogni-agent-reference.md"
    return Failure(message, "usage", False, hint, EXIT_USAGE)


def os_failure(error: OSError) -> Failure:
    hint = "check the path given to --output and the free disk space"
    return Failure(str(error), "os_error", False, hint)


def interrupted_failure() -> Failure:
    hint = "work already started goes on on the server: check it with sogni-agent --recent"
    return Failure("interrupted", "interrupted", True, hint, EXIT_INTERRUPTED)
