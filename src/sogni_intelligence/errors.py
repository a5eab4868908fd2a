"""The error types every layer raises: `ServiceError` for what a client of the HTTP API should
be told, `ToolError` for a tool's failure that the model sees as an `ok: false` result."""

from __future__ import annotations

from typing import Literal


class ServiceError(Exception):
    """An error with the HTTP status and OpenAI error fields it maps to."""

    def __init__(
        self,
        message: str,
        status: int = 500,
        type: str = "server_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        #: Seconds the client should wait before trying again (429, 503), or None.
        self.retry_after: int | None = None


class RateLimited(ServiceError):
    """429: a key is over one of its limits; `retry_after` says for how many more seconds."""

    def __init__(self, message: str, retry_after: int, code: str) -> None:
        super().__init__(message, 429, "rate_limit_error", code)
        self.retry_after = max(1, retry_after)


def invalid_request(
    message: str, param: str | None = None, code: str | None = None
) -> ServiceError:
    return ServiceError(message, 400, "invalid_request_error", code, param)


ErrorType = Literal[
    "PARAMETER_INVALID",
    "USER_INPUT_INCOMPLETE",
    "ASSET_NOT_FOUND",
    "WORKFLOW_VALIDATION_FAILED",
    "MODEL_UNAVAILABLE",
    "PROVIDER_TIMEOUT",
    "GPU_WORKER_FAILED",
    "COST_LIMIT_EXCEEDED",
    "SAFETY_REJECTED",
    "CONTENT_FILTERED",
    "PERMISSION_REQUIRED",
    "USER_CANCELLED",
    "UNKNOWN_ERROR",
]


class ToolError(Exception):
    """A failure the model should see as an `ok: false` result. Raised by tools and by the media
    backends they call."""

    def __init__(self, error_type: ErrorType, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.retryable = retryable
