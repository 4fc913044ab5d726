"""The demo app: an HTTP service and a one-span job, traced with zero code changes.

The image runs this file under ``opentelemetry-instrument``, which sets the OpenTelemetry
SDK up from the standard ``OTEL_*`` environment variables that otel-injector injects
(exporter endpoint and protocol, service name, resource attributes, propagators) and
instruments Flask and urllib. Nothing here names an endpoint, a service or an attribute.

    app.py serve        HTTP on $PORT (default 8080). GET / answers JSON; when
                        $DOWNSTREAM_URL is set it first calls that URL, so the trace
                        continues in the downstream service (W3C trace context).
                        GET /healthz answers "ok" and calls nothing.
    app.py emit NAME    record one span named NAME, flush it, exit 0.

Runs as any uid on a read-only root filesystem: it writes no file.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.request

from opentelemetry import trace

_DOWNSTREAM_TIMEOUT_SECONDS = 5.0
_MAX_BODY = 64 * 1024


def _current_trace_id() -> str:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def serve() -> int:
    """Serve HTTP until SIGTERM (werkzeug's threaded server)."""
    from flask import Flask, Response, request
    from werkzeug.serving import run_simple

    app = Flask("demo-app")

    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    def index() -> Response:
        body: dict[str, object] = {
            "pod": os.environ.get("HOSTNAME", ""),
            "trace_id": _current_trace_id(),
            "received_traceparent": request.headers.get("traceparent", ""),
        }
        downstream = os.environ.get("DOWNSTREAM_URL", "")
        status = 200
        if downstream:
            try:
                # urllib is instrumented: this call gets a client span and a traceparent.
                with urllib.request.urlopen(downstream, timeout=_DOWNSTREAM_TIMEOUT_SECONDS) as answer:  # noqa: S310
                    raw = answer.read(_MAX_BODY)
                try:
                    body["downstream"] = json.loads(raw)
                except ValueError:
                    body["downstream"] = raw.decode("utf-8", "replace")
            except OSError as exc:
                body["downstream_error"] = str(exc)
                status = 502
        return Response(json.dumps(body) + "\n", status=status, mimetype="application/json")

    app.add_url_rule("/healthz", view_func=healthz, methods=["GET"])
    app.add_url_rule("/", view_func=index, methods=["GET"])

    port = int(os.environ.get("PORT", "8080"))
    host = os.environ.get("HOST", "0.0.0.0")  # noqa: S104 - a pod serves on its own IP
    # SIGTERM (how the kubelet stops a container) exits through SystemExit, so the SDK's
    # exit handler still flushes the spans of the last requests.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
    print(f"demo-app: serving on {host}:{port}", flush=True)
    run_simple(host, port, app, threaded=True)
    return 0


def emit(name: str) -> int:
    """Record one span called ``name`` and flush it to the configured exporter."""
    tracer = trace.get_tracer("demo-app")
    with tracer.start_as_current_span(name):
        pass
    provider = trace.get_tracer_provider()
    flush = getattr(provider, "force_flush", None)
    flushed = bool(flush(10_000)) if callable(flush) else False
    print(f"demo-app: emitted span {name!r}, flushed={flushed}", flush=True)
    return 0


def main(argv: list[str]) -> int:
    """Dispatch ``serve`` / ``emit NAME``; 2 with a one-line usage for anything else."""
    if argv[:1] == ["serve"] and len(argv) == 1:
        return serve()
    if argv[:1] == ["emit"] and len(argv) == 2 and argv[1]:
        return emit(argv[1])
    print("usage: demo-app serve | demo-app emit NAME", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
