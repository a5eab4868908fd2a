"""Structured logs on the standard `logging` module: JSON lines for machines, readable text for
a terminal, and the id of the HTTP request each line belongs to.

Fields are passed as `extra={...}`; whatever a record carries beyond the standard attributes
is written out, so a log call site names its fields once for both formats.
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

LogFormat = Literal["auto", "json", "text"]

#: The id of the HTTP request being served, for every log line written while serving it.
REQUEST_ID: ContextVar[str | None] = ContextVar("sogni_request_id", default=None)

MAX_REQUEST_ID = 128

#: The attributes every LogRecord has; anything else on a record came from `extra` (except
#: uvicorn's ANSI-coloured copy of its message).
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "taskName", "request_id", "color_message"}
)


def sanitize_request_id(value: str | None) -> str:
    """The client's `X-Request-Id` when it is 1-128 printable ASCII characters (safe to echo in
    a header and a log line), else a new random id."""
    if value:
        value = value.strip()
        if 0 < len(value) <= MAX_REQUEST_ID and all(" " <= c <= "~" for c in value):
            return value
    return secrets.token_hex(16)


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of a record: its request id, then what `extra` gave it."""
    found: dict[str, Any] = {}
    request_id = getattr(record, "request_id", None)
    if request_id is not None:
        found["request_id"] = request_id
    for name, value in record.__dict__.items():
        if name not in _STANDARD and not name.startswith("_") and value is not None:
            found[name] = value
    return found


class RequestIdFilter(logging.Filter):
    """Stamps each record with the current request's id (unless it carries one already)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **fields_of(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message key=value ...` for a person at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        fields = " ".join(f"{k}={v}" for k, v in fields_of(record).items())
        text = f"{when} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if fields:
            text += f"  {fields}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def formatter_for(log_format: LogFormat, stream: TextIO) -> logging.Formatter:
    """`auto`: text when `stream` is a terminal, JSON lines otherwise (a file, a collector)."""
    if log_format == "auto":
        log_format = "text" if stream.isatty() else "json"
    return TextFormatter() if log_format == "text" else JsonFormatter()


class _OurHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installed, so configuring again replaces it."""


def configure_logging(level: str, log_format: LogFormat, stream: TextIO | None = None) -> None:
    """Send every logger's records (ours, uvicorn's, libraries') through one handler on the
    root logger in the chosen format, at `level`."""
    stream = stream or sys.stderr
    handler = _OurHandler(stream)
    handler.setFormatter(formatter_for(log_format, stream))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for logger in (root, *map(logging.getLogger, _OWN_CONSOLE)):
        for old in [h for h in logger.handlers if isinstance(h, _OurHandler)]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.propagate = logger is root
    root.setLevel(level.upper())
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG if level == "debug" else logging.WARNING)


#: Loggers that add a console handler of their own unless they have a handler already: they
#: get ours first (and do not pass their records on to the root's copy of it).
_OWN_CONSOLE = ("dbos",)
#: Libraries that log routine work at INFO (httpx: every request, health checks included).
_CHATTY = ("httpx",)
