"""The server span of every request, from ``opentelemetry-instrumentation-fastapi``.

The official instrumentation is what OTel users know, so it is configured the standard way:

* ``OTEL_PYTHON_FASTAPI_EXCLUDED_URLS`` (else ``OTEL_PYTHON_EXCLUDED_URLS``): regexes of the
  URLs left untraced. When neither is set, :data:`DEFAULT_EXCLUDED_URLS` leaves out the
  probes and the scrape, which would otherwise be most of the spans and show nothing.
  Set either one to an empty string to trace everything.
* ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST`` / ``..._SERVER_RESPONSE`` /
  ``..._SANITIZE_FIELDS``: request and response headers recorded on the server span.
* ``OTEL_SEMCONV_STABILITY_OPT_IN``: which HTTP semantic conventions name the attributes.
  When it is not set, :func:`instrument` sets it to :data:`DEFAULT_SEMCONV` (``http``, the
  stable conventions: ``http.request.method``, ``url.path``, ``http.response.status_code``...)
  rather than the instrumentation's older default names. The stable set is also two
  attributes shorter (11, not 13), and every attribute is encoded again for every span.

The span continues the caller's W3C ``traceparent`` (the global propagator), is named after
the route (``POST /mutate``) and is current while the route runs, so the admission handler
puts its request attributes on it and hangs its phases under it. The per-message ASGI
``receive`` and ``send`` spans are left out: three spans for one small body and one answer,
which show nothing the server span does not, and cost about as much as the server span.
The instrumentation's HTTP duration metrics go to a no-op meter: the webhook's own
Prometheus metrics already time every admission.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.trace import TracerProvider

#: Regexes (searched in the request URL) that are not traced unless the user says otherwise.
DEFAULT_EXCLUDED_URLS = "/healthz$,/readyz$,/metrics$"
#: Where the instrumentation reads its excluded URLs, most specific first.
EXCLUDED_URLS_VARIABLES = ("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "OTEL_PYTHON_EXCLUDED_URLS")
#: The HTTP semantic conventions used unless OTEL_SEMCONV_STABILITY_OPT_IN says otherwise.
SEMCONV_VARIABLE = "OTEL_SEMCONV_STABILITY_OPT_IN"
DEFAULT_SEMCONV = "http"


def excluded_urls(environ: Mapping[str, str] | None = None) -> str:
    """The user's excluded URLs when either standard variable is set (even to nothing),
    else :data:`DEFAULT_EXCLUDED_URLS`."""
    env = os.environ if environ is None else environ
    for name in EXCLUDED_URLS_VARIABLES:
        if name in env:
            return env[name]
    return DEFAULT_EXCLUDED_URLS


def instrument(app: FastAPI, provider: TracerProvider | None, environ: Mapping[str, str] | None = None) -> None:
    """Trace ``app``'s requests with ``provider``'s tracer; nothing when tracing is off.

    The semantic-convention choice is process-wide in the instrumentation and read once,
    at the first instrumented app: so the default goes into ``os.environ`` here, before
    that, unless the variable is set."""
    if provider is None:
        return
    os.environ.setdefault(SEMCONV_VARIABLE, DEFAULT_SEMCONV)
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        meter_provider=NoOpMeterProvider(),
        # Read here, not at the instrumentation's import, so the value in force when the
        # app is built wins (and the default applies only when the user set nothing).
        excluded_urls=excluded_urls(environ),
        exclude_spans=["receive", "send"],
    )
