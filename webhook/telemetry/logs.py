"""Structured (JSON) logs. Each line carries the trace and span id of the request it was
written in, so a log line and its trace in Jaeger can be joined by id.

One line per admission, ours: uvicorn's access log is switched off for real (its
httptools protocol logs access whenever ``uvicorn.access`` has a handler, and propagating
to the root's is one). Every line is bounded: a message or string field over
:data:`MAX_FIELD_CHARS` is cut, with its length named, as a last line of defence behind the
clipping the callers do (a 5 MB uid once made a 5 MB line).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
from opentelemetry import trace

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is kept.
# uvicorn's color_message duplicates the message with terminal escapes.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


MAX_FIELD_CHARS = 2048


def _bounded(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
        return f"{value[:MAX_FIELD_CHARS]}... ({len(value):,} characters)"
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, trace_id, span_id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a single JSON line."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": _bounded(record.getMessage()),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = format(context.trace_id, "032x")
            entry["span_id"] = format(context.span_id, "016x")
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = _bounded(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def setup_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every logger, uvicorn's included, through one JSON handler on stderr."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Our own line per admission is the access log; uvicorn's would be a second one.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
