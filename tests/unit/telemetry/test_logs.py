"""JSON log lines, joined to traces by id."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support import restored_logging
from webhook.telemetry.logs import JsonFormatter, setup_logging


def record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    logger = logging.getLogger("webhook.test")
    made = logger.makeRecord(
        "webhook.test", logging.WARNING, __file__, 10, message, args or ("world",), None, extra=extra
    )
    made.created = 1_700_000_000.123456
    return made


def test_one_json_line_with_standard_fields() -> None:
    line = JsonFormatter().format(record())
    assert "\n" not in line
    assert json.loads(line) == {
        "time": "2023-11-14T22:13:20.123+00:00",
        "level": "WARNING",
        "logger": "webhook.test",
        "message": "hello world",
    }


def test_trace_and_span_id_inside_a_span() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("admission") as span:
        line = JsonFormatter().format(record())
        context = span.get_span_context()
    entry = json.loads(line)
    assert entry["trace_id"] == f"{context.trace_id:032x}"
    assert entry["span_id"] == f"{context.span_id:016x}"
    assert len(entry["trace_id"]) == 32
    assert len(entry["span_id"]) == 16
    finished = exporter.get_finished_spans()
    assert [s.name for s in finished] == ["admission"]
    assert finished[0].context.trace_id == context.trace_id
    provider.shutdown()


def test_no_ids_outside_a_span() -> None:
    entry = json.loads(JsonFormatter().format(record()))
    assert "trace_id" not in entry
    assert "span_id" not in entry


def test_extras_are_included_and_odd_values_stringified() -> None:
    entry = json.loads(JsonFormatter().format(record(uid="u-1", patch_operations=7, path=object, _private=1)))
    assert entry["uid"] == "u-1"
    assert entry["patch_operations"] == 7
    assert entry["path"] == str(object)
    assert "_private" not in entry
    assert "args" not in entry
    assert "color_message" not in json.loads(JsonFormatter().format(record(color_message="\x1b[1m")))


def test_exception_is_rendered() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    made = logging.getLogger("x").makeRecord("x", logging.ERROR, __file__, 1, "failed", (), exc_info)
    line = JsonFormatter().format(made)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "failed"
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert entry["exception"].endswith("ValueError: boom")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """setup_logging changes process-wide loggers; put them back for the other tests."""
    with restored_logging():
        yield


@pytest.mark.usefixtures("restore_logging")
def test_setup_logging_routes_everything_through_one_json_handler() -> None:
    stream = io.StringIO()
    setup_logging("debug", stream)
    root = logging.getLogger()
    assert root.level == logging.DEBUG
    assert len(root.handlers) == 1
    assert isinstance(root.handlers[0].formatter, JsonFormatter)
    assert logging.getLogger("uvicorn.access").handlers == []
    assert logging.getLogger("uvicorn.access").propagate is True
    logging.getLogger("uvicorn.error").info("started", extra={"port": 8443})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert (entry["logger"], entry["level"], entry["message"], entry["port"]) == (
        "uvicorn.error",
        "INFO",
        "started",
        8443,
    )


def test_time_keeps_milliseconds_across_seconds() -> None:
    formatter = JsonFormatter()
    times = []
    for created in (1_700_000_000.999, 1_700_000_001.0, 1_700_000_001.05):
        made = record()
        made.created = created
        times.append(json.loads(formatter.format(made))["time"])
    assert times == ["2023-11-14T22:13:20.999+00:00", "2023-11-14T22:13:21.000+00:00", "2023-11-14T22:13:21.050+00:00"]


def test_setup_logging_stops_collecting_fields_no_line_shows() -> None:
    with restored_logging():
        setup_logging("info", io.StringIO())
        made = logging.getLogger("webhook.test").makeRecord("webhook.test", logging.INFO, "f.py", 3, "m", (), None)
        assert (made.threadName, made.processName) == (None, None)
        assert logging._srcfile is None
