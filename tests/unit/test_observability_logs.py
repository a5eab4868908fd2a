"""Structured logs: the request id, the JSON and text line formats, and the handler setup."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from sogni_intelligence.observability.logs import (
    REQUEST_ID,
    JsonFormatter,
    RequestIdFilter,
    TextFormatter,
    configure_logging,
    formatter_for,
    sanitize_request_id,
)


@pytest.mark.parametrize("given", ["abc-123", "req 42 / retry #2", "x" * 128, "~!{}"])
def test_a_printable_request_id_of_up_to_128_chars_is_kept(given: str) -> None:
    assert sanitize_request_id(given) == given


def test_a_request_id_is_stripped_of_surrounding_spaces() -> None:
    assert sanitize_request_id("  abc  ") == "abc"


@pytest.mark.parametrize("given", [None, "", "   ", "x" * 129, "line\nbreak", "tab\there", "é"])
def test_an_unusable_request_id_is_replaced_by_a_new_one(given: str | None) -> None:
    made = sanitize_request_id(given)
    assert made != given and len(made) == 32 and int(made, 16) >= 0
    assert sanitize_request_id(given) != made  # a fresh one each time


def _record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("sogni.test", logging.INFO, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


def test_a_json_line_has_the_standard_fields_then_the_extra_ones() -> None:
    record = _record("GET %s", "/v1/models", route="/v1/models", status=200, key_id=None)
    line = json.loads(JsonFormatter().format(record))
    assert list(line)[:4] == ["time", "level", "logger", "message"]
    assert line["level"] == "info" and line["logger"] == "sogni.test"
    assert line["message"] == "GET /v1/models"
    assert line["route"] == "/v1/models" and line["status"] == 200
    assert "key_id" not in line  # a field without a value is left out
    assert line["time"].endswith("+00:00")


def test_the_filter_stamps_the_current_request_id_unless_one_is_given() -> None:
    token = REQUEST_ID.set("req-1")
    try:
        stamped = _record()
        RequestIdFilter().filter(stamped)
        given = _record(request_id="req-2")
        RequestIdFilter().filter(given)
    finally:
        REQUEST_ID.reset(token)
    assert json.loads(JsonFormatter().format(stamped))["request_id"] == "req-1"
    assert json.loads(JsonFormatter().format(given))["request_id"] == "req-2"
    outside = _record()
    RequestIdFilter().filter(outside)
    assert "request_id" not in json.loads(JsonFormatter().format(outside))


def test_an_exception_goes_into_the_json_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "sogni.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    line = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in line["exception"] and line["level"] == "error"


def test_a_text_line_is_readable_with_its_fields_after_the_message() -> None:
    text = TextFormatter().format(_record("GET %s", "/health", status=200, request_id="r1"))
    assert "INFO" in text and "sogni.test: GET /health" in text
    assert text.endswith("request_id=r1 status=200")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_writes_text_to_a_terminal_and_json_elsewhere() -> None:
    assert isinstance(formatter_for("auto", _Terminal()), TextFormatter)
    assert isinstance(formatter_for("auto", io.StringIO()), JsonFormatter)
    assert isinstance(formatter_for("json", _Terminal()), JsonFormatter)
    assert isinstance(formatter_for("text", io.StringIO()), TextFormatter)


@pytest.fixture
def restored_logging() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in ("", "dbos", "httpx")]
    saved = [(lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    yield
    for logger, (handlers, level, propagate) in zip(loggers, saved, strict=True):
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.mark.usefixtures("restored_logging")
def test_configured_logging_writes_one_json_line_per_record_once() -> None:
    first, out = io.StringIO(), io.StringIO()
    configure_logging("info", "json", first)
    configure_logging("info", "json", out)  # configuring again replaces the handler
    token = REQUEST_ID.set("req-9")
    try:
        logging.getLogger("sogni_intelligence.test").info("one", extra={"record_id": "wf_1"})
        logging.getLogger("dbos").warning("two")
        logging.getLogger("sogni_intelligence.test").debug("below the level")
        logging.getLogger("httpx").info("routine request")
    finally:
        REQUEST_ID.reset(token)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["one", "two"]
    assert lines[0]["record_id"] == "wf_1" and lines[0]["request_id"] == "req-9"
    assert first.getvalue() == ""
