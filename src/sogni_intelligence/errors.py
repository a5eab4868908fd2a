"""The one error type every layer raises for something a client should be told about."""

from __future__ import annotations


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


def invalid_request(
    message: str, param: str | None = None, code: str | None = None
) -> ServiceError:
    return ServiceError(message, 400, "invalid_request_error", code, param)
